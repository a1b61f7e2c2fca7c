package attest

// Claim names that more than one package relies on: the evidence kinds set
// them, and the release appraisal compares them with release records.
const (
	// ClaimMeasurement is an SEV-SNP section's launch measurement (hex).
	ClaimMeasurement = "measurement"
	// ClaimMRTD and ClaimRTMR (suffixed 0 to 3) are a TDX section's
	// registers (hex).
	ClaimMRTD = "mrtd"
	ClaimRTMR = "rtmr"
	// ClaimGPUDriverVersion and ClaimGPUVBIOSVersion are an NVIDIA GPU
	// section's driver and VBIOS versions, named after NVIDIA's claims.
	ClaimGPUDriverVersion = "x-nvidia-gpu-driver-version"
	ClaimGPUVBIOSVersion  = "x-nvidia-gpu-vbios-version"
	// ClaimGPUCount is, in the release section, the number of GPUs the
	// release names for its machine shape, set when release.match compared
	// it with the bundle's GPUs.
	ClaimGPUCount = "gpu_count"
)
