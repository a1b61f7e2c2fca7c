package tdx

import (
	"encoding/hex"
	"strings"

	"github.com/google/go-tdx-guest/pcs"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/snp"
)

// Claim names of a TDX section besides attest.ClaimMRTD and
// attest.ClaimRTMR0…3.
const (
	ClaimTCBStatus   = "tcb_status"
	ClaimAdvisoryIDs = "advisory_ids"
	ClaimQETCBStatus = "qe_tcb_status"
	// ClaimHCLAKPub is an Azure TDX VM's vTPM attestation key (PEM) from
	// the HCL runtime data; the TPM verifier trusts it only when
	// tdx.binding passed (it is tpm.ClaimHCLAKPub).
	ClaimHCLAKPub = "hcl_ak_pub"
)

// hexStrings returns a function that hex-encodes its argument into one
// string of size bytes it shares with its other results, so that the
// claims' dozen hex strings cost one allocation, not two each; past size,
// it allocates each.
func hexStrings(size int) func([]byte) string {
	var all strings.Builder
	all.Grow(size)
	return func(x []byte) string {
		if all.Len()+hex.EncodedLen(len(x)) > all.Cap() {
			return hex.EncodeToString(x)
		}
		var buf [128]byte
		start := all.Len()
		for len(x) > 0 {
			n := min(len(x), len(buf)/2)
			all.Write(hex.AppendEncode(buf[:0], x[:n]))
			x = x[n:]
		}
		return all.String()[start:]
	}
}

// rtmrClaims are the claim names of RTMR0 to RTMR3.
var rtmrClaims = [...]string{attest.ClaimRTMR + "0", attest.ClaimRTMR + "1", attest.ClaimRTMR + "2", attest.ClaimRTMR + "3"}

// claims turns a quote into the claims that policies, rules and release
// records see. ext, tcb and qe may be nil.
func claims(a *Attestation, ext *pcs.PckExtensions, tcb, qe *TCBResult) map[string]any {
	q := a.Quote
	b := &q.Body
	h := hexStrings(2 * body15Size) // every field of the body, in hex
	attr := b.Attributes()
	// Sized for every claim: growing a map costs more than filling it.
	c := make(map[string]any, 40)
	for _, kv := range [...]struct {
		k string
		v any
	}{
		{"quote_version", q.Version},
		{"body", bodyName(q)},
		{attest.ClaimMRTD, h(b.MRTD[:])},
		{"mrconfigid", h(b.MRCONFIGID[:])},
		{"mrowner", h(b.MROWNER[:])},
		{"mrownerconfig", h(b.MROWNERCONFIG[:])},
		{"mrseam", h(b.MRSEAM[:])},
		{"mrsignerseam", h(b.MRSIGNERSEAM[:])},
		{"seam_attributes", h(b.SEAMAttributes[:])},
		{"td_attributes", h(b.TDAttributes[:])},
		{"xfam", h(b.XFAM[:])},
		{"tee_tcb_svn", h(b.TEETCBSVN[:])},
		{"report_data", h(b.ReportData[:])},
		{"debug", attr&AttrDebug != 0},
		{"sept_ve_disable", attr&AttrSEPTVEDisable != 0},
		{"migratable", attr&AttrMigratable != 0},
		{"pks", attr&AttrPKS != 0},
		{"kl", attr&AttrKL != 0},
		{"perfmon", attr&AttrPerfmon != 0},
		{"qe_svn", q.QEReport.ISVSVN},
		{"pce_svn", q.PCESVN},
	} {
		c[kv.k] = kv.v
	}
	for i, name := range rtmrClaims {
		c[name] = h(b.RTMR[i][:])
	}
	if q.BodyType == bodyTypeTD15 {
		c["tee_tcb_svn_2"] = h(b.TEETCBSVN2[:])
		c["mrservicetd"] = h(b.MRSERVICETD[:])
	}
	if ext != nil {
		c["fmspc"] = strings.ToLower(ext.FMSPC)
		c["pce_id"] = strings.ToLower(ext.PCEID)
	}
	if tcb != nil {
		c[ClaimTCBStatus] = tcb.Status
		c["tcb_date"] = tcb.Date
		adv := tcb.Advisories
		if adv == nil {
			adv = []string{}
		}
		c[ClaimAdvisoryIDs] = adv
	}
	if qe != nil {
		c[ClaimQETCBStatus] = qe.Status
	}
	if h := a.HCL; h != nil {
		c["hcl"] = map[string]any{"vm_configuration": h.Runtime.VMConfiguration, "user_data": h.Runtime.UserData}
		if ak, err := h.AKPublic(); err == nil {
			if p, err := snp.PEMPublicKey(ak); err == nil {
				c[ClaimHCLAKPub] = p
			}
		}
	}
	return c
}

// Inspect returns a JSON-friendly view of parsed evidence: the quote's
// fields, the PCK chain and, when stapled, a summary of the collateral.
func Inspect(a *Attestation) map[string]any {
	var ext *pcs.PckExtensions
	if len(a.PCK) > 0 {
		ext, _ = pckExtensions(a.PCK[0])
	}
	out := map[string]any{"quote": claims(a, ext, nil, nil)}
	var certs []map[string]any
	for _, c := range a.PCK {
		certs = append(certs, map[string]any{
			"subject": c.Subject.String(), "issuer": c.Issuer.String(), "serial": c.SerialNumber.Text(16),
			"not_before": c.NotBefore, "not_after": c.NotAfter, "spki_sha256": SPKIHash(c),
		})
	}
	out["pck_chain"] = certs
	if c := a.Collateral; c != nil {
		out["collateral"] = InspectCollateral(c)
	}
	if a.CCEL != nil {
		out["ccel_bytes"] = len(a.CCEL)
	}
	if a.HCL != nil {
		out["hcl_runtime_data"] = string(a.HCL.RuntimeData)
	}
	return out
}

// InspectCollateral returns a JSON-friendly summary of collateral (nothing
// is verified): what each piece is for, and when it was issued and expires.
func InspectCollateral(c *ParsedCollateral) map[string]any {
	var levels []map[string]any
	for _, l := range c.TCBInfo.TcbLevels {
		levels = append(levels, map[string]any{"tcb_date": l.TcbDate, "status": string(l.TcbStatus), "advisory_ids": l.AdvisoryIDs})
	}
	return map[string]any{
		"tcb_info":    map[string]any{"fmspc": strings.ToLower(c.TCBInfo.Fmspc), "issue_date": c.TCBInfo.IssueDate, "next_update": c.TCBInfo.NextUpdate, "evaluation": c.TCBInfo.TcbEvaluationDataNumber, "levels": levels, "signer": c.TCBInfoChain[0].Subject.CommonName},
		"qe_identity": map[string]any{"issue_date": c.QEIdentity.IssueDate, "next_update": c.QEIdentity.NextUpdate, "levels": len(c.QEIdentity.TcbLevels), "signer": c.QEIdentityChain[0].Subject.CommonName},
		"pck_crl":     map[string]any{"issuer": c.PCKCRL.Issuer.String(), "this_update": c.PCKCRL.ThisUpdate, "next_update": c.PCKCRL.NextUpdate, "revoked": len(c.PCKCRL.RevokedCertificateEntries)},
		"root_ca_crl": map[string]any{"issuer": c.RootCRL.Issuer.String(), "this_update": c.RootCRL.ThisUpdate, "next_update": c.RootCRL.NextUpdate, "revoked": len(c.RootCRL.RevokedCertificateEntries)},
	}
}
