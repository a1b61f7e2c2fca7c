package attest

// SetSequential makes Appraise verify every entry in turn (true) or GPUs
// concurrently (false, the default), for tests that compare the two.
func SetSequential(b bool) { sequential = b }
