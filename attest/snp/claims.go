package snp

import (
	"encoding/hex"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"

	"github.com/sworn-dev/sworn/attest"
)

// TCB is a TCB version split into its components. Which byte holds which
// component depends on the product line: Turin adds an FMC component and
// moves the others.
type TCB struct {
	Bootloader uint8 `json:"bootloader"`
	TEE        uint8 `json:"tee"`
	SNP        uint8 `json:"snp"`
	Microcode  uint8 `json:"microcode"`
	FMC        uint8 `json:"fmc,omitempty"`
}

// DecodeTCB splits a 64-bit TCB version by the layout of the product line.
func DecodeTCB(v uint64, product string) TCB {
	b := func(i int) uint8 { return uint8(v >> (8 * i)) }
	if product == "Turin" {
		return TCB{FMC: b(0), Bootloader: b(1), TEE: b(2), SNP: b(3), Microcode: b(7)}
	}
	return TCB{Bootloader: b(0), TEE: b(1), SNP: b(6), Microcode: b(7)}
}

func (t TCB) claims() map[string]any {
	m := map[string]any{"bootloader": t.Bootloader, "tee": t.TEE, "snp": t.SNP, "microcode": t.Microcode}
	if t.FMC != 0 {
		m["fmc"] = t.FMC
	}
	return m
}

// claims turns a report into the claims that policies and rules see.
func claims(a *Attestation, info abi.SignerInfo, product string) map[string]any {
	r := a.Report
	c := map[string]any{
		"report_version":        r.GetVersion(),
		"product":               product,
		"signer":                signerName(info.SigningKey),
		attest.ClaimMeasurement: hex.EncodeToString(r.GetMeasurement()),
		"host_data":             hex.EncodeToString(r.GetHostData()),
		"report_data":           hex.EncodeToString(r.GetReportData()),
		"id_key_digest":         hex.EncodeToString(r.GetIdKeyDigest()),
		"author_key_digest":     hex.EncodeToString(r.GetAuthorKeyDigest()),
		"family_id":             hex.EncodeToString(r.GetFamilyId()),
		"image_id":              hex.EncodeToString(r.GetImageId()),
		"guest_svn":             r.GetGuestSvn(),
		"vmpl":                  r.GetVmpl(),
		"guest_policy":          r.GetPolicy(),
		"reported_tcb":          DecodeTCB(r.GetReportedTcb(), product).claims(),
		"committed_tcb":         DecodeTCB(r.GetCommittedTcb(), product).claims(),
		"current_tcb":           DecodeTCB(r.GetCurrentTcb(), product).claims(),
		"launch_tcb":            DecodeTCB(r.GetLaunchTcb(), product).claims(),
		"platform_info":         r.GetPlatformInfo(),
	}
	if !info.MaskChipKey {
		c["chip_id"] = hex.EncodeToString(r.GetChipId())
	}
	if gp, err := abi.ParseSnpPolicy(r.GetPolicy()); err == nil {
		c["debug"] = gp.Debug
		c["smt_allowed"] = gp.SMT
		c["migrate_ma"] = gp.MigrateMA
		c["abi"] = map[string]any{"major": gp.ABIMajor, "minor": gp.ABIMinor}
	}
	if pi, err := abi.ParseSnpPlatformInfo(r.GetPlatformInfo()); err == nil {
		c["smt_enabled"] = pi.SMTEnabled
		c["tsme_enabled"] = pi.TSMEEnabled
	}
	if r.GetVersion() >= 3 {
		c["current_version"] = map[string]any{"major": r.GetCurrentMajor(), "minor": r.GetCurrentMinor(), "build": r.GetCurrentBuild()}
	}
	if a.SVSMManifest != nil {
		c[ClaimSVSMEK] = hex.EncodeToString(a.SVSMManifest)
	}
	if h := a.HCL; h != nil {
		hc := map[string]any{"vm_configuration": h.Runtime.VMConfiguration, "user_data": h.Runtime.UserData}
		if ak, err := h.AKPublic(); err == nil {
			if p, err := pemPublicKey(ak); err == nil {
				c["hcl_ak_pub"] = p
			}
		}
		c["hcl"] = hc
	}
	return c
}

// Inspect returns a JSON-friendly view of parsed evidence: the report's
// fields, and a summary of each certificate and CRL.
func Inspect(a *Attestation) map[string]any {
	info, _ := abi.ParseSignerInfo(a.Report.GetSignerInfo())
	var exts *kds.Extensions
	if ek := findEndorsementKey(a.Certs, info.SigningKey); ek != nil {
		exts, _ = kds.CertificateExtensions(ek, info.SigningKey)
	}
	out := map[string]any{"report": claims(a, info, productOf(a, exts))}
	if a.HCL != nil {
		out["hcl_runtime_data"] = string(a.HCL.RuntimeData)
	}
	var certs []map[string]any
	for _, c := range a.Certs {
		certs = append(certs, map[string]any{
			"subject": c.Subject.String(), "issuer": c.Issuer.String(), "serial": c.SerialNumber.String(),
			"not_before": c.NotBefore, "not_after": c.NotAfter, "spki_sha256": SPKIHash(c),
		})
	}
	if certs != nil {
		out["certificates"] = certs
	}
	var crls []map[string]any
	for _, c := range a.CRLs {
		crls = append(crls, map[string]any{
			"issuer": c.Issuer.String(), "this_update": c.ThisUpdate, "next_update": c.NextUpdate,
			"revoked": len(c.RevokedCertificateEntries),
		})
	}
	if crls != nil {
		out["crls"] = crls
	}
	return out
}
