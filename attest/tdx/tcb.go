package tdx

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-tdx-guest/pcs"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
)

// TCBResult is the outcome of a TCB status evaluation.
type TCBResult struct {
	// Status is Intel's TCB status ("UpToDate", "OutOfDate", …); empty when
	// it could not be evaluated.
	Status string
	// Date is the matching TCB level's tcbDate.
	Date string
	// Advisories are the Intel security advisory IDs of the level.
	Advisories []string
}

var statusRank = func() map[string]int {
	m := map[string]int{}
	for i, s := range policy.TDXStatuses {
		m[s] = i
	}
	return m
}()

// converge combines the platform's TCB status with the TDX module's, as
// Intel's Quote Verification Library does: the module being out of date
// or revoked makes the whole out of date or revoked.
func converge(platform, module string) string {
	switch module {
	case "OutOfDate":
		switch platform {
		case "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded":
			return "OutOfDateConfigurationNeeded"
		case "OutOfDateConfigurationNeeded", "Revoked":
			return platform
		}
		return "OutOfDate"
	case "Revoked":
		return "Revoked"
	}
	if statusRank[module] > statusRank[platform] {
		return module
	}
	return platform
}

// evaluateTCB finds the TCB level of the platform in the TCB info: the
// first level (they are sorted best first) whose SGX components and PCE SVN
// the PCK certificate meets and whose TDX components TEE_TCB_SVN meets;
// then, for TDX module major versions 1 and later, the module's own level.
func evaluateTCB(ti *pcs.TcbInfo, body *Body, ext *pcs.PckExtensions) (TCBResult, error) {
	svn := body.TEETCBSVN[:]
	var level *pcs.TcbLevel
	for i := range ti.TcbLevels {
		l := &ti.TcbLevels[i]
		if len(l.Tcb.SgxTcbcomponents) != 16 || len(l.Tcb.TdxTcbcomponents) != 16 {
			return TCBResult{}, fmt.Errorf("TCB level %d of the TCB info has %d SGX and %d TDX components; want 16 each", i, len(l.Tcb.SgxTcbcomponents), len(l.Tcb.TdxTcbcomponents))
		}
		if !meets(ext.TCB.CPUSvnComponents, l.Tcb.SgxTcbcomponents, 0) || ext.TCB.PCESvn < l.Tcb.Pcesvn {
			continue
		}
		start := 0
		if svn[1] > 0 {
			start = 2 // bytes 0 and 1 are the module's SVN and major version, judged by its identity
		}
		if !meets(svn, l.Tcb.TdxTcbcomponents, start) {
			continue
		}
		level = l
		break
	}
	if level == nil {
		return TCBResult{}, fmt.Errorf("no matching TCB level found: no level of the TCB info is met by the PCK certificate's TCB (CPU SVN %s, PCE SVN %d) and TEE_TCB_SVN %s; the platform is below every level Intel lists", hex.EncodeToString(ext.TCB.CPUSvnComponents), ext.TCB.PCESvn, hex.EncodeToString(svn))
	}
	r := TCBResult{Status: string(level.TcbStatus), Date: level.TcbDate, Advisories: level.AdvisoryIDs}
	if svn[1] == 0 {
		return r, nil
	}
	want := fmt.Sprintf("TDX_%02X", svn[1])
	for _, m := range ti.TdxModuleIdentities {
		if !strings.EqualFold(m.ID, want) {
			continue
		}
		for _, ml := range m.TcbLevels {
			if uint32(svn[0]) >= ml.Tcb.Isvsvn {
				r.Status = converge(r.Status, string(ml.TcbStatus))
				r.Advisories = mergeAdvisories(r.Advisories, ml.AdvisoryIDs)
				return r, nil
			}
		}
		return TCBResult{}, fmt.Errorf("no TCB level of TDX module identity %s is met by the module's SVN %d", want, svn[0])
	}
	return TCBResult{}, fmt.Errorf("the TCB info has no TDX module identity %s for the quote's module (TEE_TCB_SVN %s)", want, hex.EncodeToString(svn))
}

func meets(got []byte, want []pcs.TcbComponent, start int) bool {
	if len(got) != len(want) {
		return false
	}
	for i := start; i < len(got); i++ {
		if got[i] < want[i].Svn {
			return false
		}
	}
	return true
}

func mergeAdvisories(a, b []string) []string {
	out := slices.Clone(a)
	for _, id := range b {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// checkModule checks the quote's TDX module (MRSIGNERSEAM, SEAM
// attributes) against the TCB info's module identity.
func checkModule(ti *pcs.TcbInfo, body *Body) error {
	signer, attrs, mask := ti.TdxModule.Mrsigner.Bytes, ti.TdxModule.Attributes.Bytes, ti.TdxModule.AttributesMask.Bytes
	if v := body.TEETCBSVN[1]; v > 0 {
		want := fmt.Sprintf("TDX_%02X", v)
		for _, m := range ti.TdxModuleIdentities {
			if strings.EqualFold(m.ID, want) {
				signer, attrs, mask = m.Mrsigner.Bytes, m.Attributes.Bytes, m.AttributesMask.Bytes
			}
		}
	}
	if !bytes.Equal(signer, body.MRSIGNERSEAM[:]) {
		return fmt.Errorf("the TDX module's MRSIGNERSEAM %s is not the %s the TCB info names: it is not Intel's module", shortHex(body.MRSIGNERSEAM[:]), shortHex(signer))
	}
	if len(attrs) != 8 || len(mask) != 8 {
		return fmt.Errorf("the TCB info's TDX module attributes are %d bytes with a %d-byte mask; want 8", len(attrs), len(mask))
	}
	got := binary.LittleEndian.Uint64(body.SEAMAttributes[:])
	w, m := binary.LittleEndian.Uint64(attrs), binary.LittleEndian.Uint64(mask)
	if got&m != w&m {
		return fmt.Errorf("the TDX module's SEAM attributes %s do not match the TCB info's %s (mask %s)", hex.EncodeToString(body.SEAMAttributes[:]), hex.EncodeToString(attrs), hex.EncodeToString(mask))
	}
	return nil
}

// judge adds a step for a TCB status under the policy.
func judge(s *attest.Section, id, what string, r TCBResult, tp *policy.TDX) {
	adv := ""
	if len(r.Advisories) > 0 {
		adv = "; advisories " + strings.Join(r.Advisories, ", ")
	}
	switch tp.Action(r.Status) {
	case "":
		s.Add(id, attest.Pass, "%s TCB status is UpToDate (TCB date %s)%s", what, r.Date, adv)
	case policy.TCBWarn:
		s.Add(id, attest.Warn, "%s TCB status is %s (TCB date %s)%s; the policy accepts it with a warning", what, r.Status, r.Date, adv)
	default:
		s.Add(id, attest.Fail, "%s TCB status is %s (TCB date %s)%s; the policy refuses it: the host must update its firmware or TDX module (set tdx.tcb_status.%s: warn to accept it)", what, r.Status, r.Date, adv, r.Status)
	}
}

func checkTCB(s *attest.Section, a *Attestation, ch chain, cl collateral, env *attest.Env) *TCBResult {
	const id = "tdx.tcb"
	if !cl.ok {
		if a.Collateral == nil && env.Policy == nil {
			s.Add(id, attest.Skip, "no collateral given, so the platform's TCB status is unknown")
		} else {
			s.Add(id, attest.Fail, "the TCB info could not be used (see tdx.collateral), so the platform's TCB status is unknown")
		}
		return nil
	}
	ti := &cl.c.TCBInfo
	if err := checkModule(ti, &a.Quote.Body); err != nil {
		s.Add(id, attest.Fail, "%v", err)
		return nil
	}
	r, err := evaluateTCB(ti, &a.Quote.Body, ch.ext)
	if err != nil {
		s.Add(id, attest.Fail, "%v", err)
		return nil
	}
	judge(s, id, "the platform's", r, tdxPolicy(env.Policy))
	if r.Status == "UpToDate" {
		env.Ledger.Verify("tdx.tcb", "The platform's TCB (CPU microcode, SEAM, TDX module) is current by Intel's TCB info.")
	}
	return &r
}

// checkQE checks the QE report against Intel's QE identity: MRSIGNER,
// ISVPRODID, MISCSELECT and attributes under their masks, and the QE's
// TCB status by its ISVSVN.
func checkQE(s *attest.Section, a *Attestation, cl collateral, env *attest.Env) *TCBResult {
	const id = "tdx.qe"
	if !cl.ok {
		if a.Collateral == nil && env.Policy == nil {
			s.Add(id, attest.Skip, "no collateral given, so the Quoting Enclave's identity is not checked")
		} else {
			s.Add(id, attest.Fail, "the QE identity could not be used (see tdx.collateral), so the Quoting Enclave is not known to be Intel's")
		}
		return nil
	}
	qi := &cl.c.QEIdentity
	qe := &a.Quote.QEReport
	if a.Quote.QEVendorID != intelQEVendorID {
		s.Add(id, attest.Fail, "the quote's QE vendor ID is %s, not Intel's Quoting Enclave (%s)", hex.EncodeToString(a.Quote.QEVendorID[:]), hex.EncodeToString(intelQEVendorID[:]))
		return nil
	}
	if !bytes.Equal(qi.Mrsigner.Bytes, qe.MRSIGNER[:]) {
		s.Add(id, attest.Fail, "the Quoting Enclave's MRSIGNER %s is not Intel's %s", hex.EncodeToString(qe.MRSIGNER[:]), hex.EncodeToString(qi.Mrsigner.Bytes))
		return nil
	}
	if qi.IsvProdID != qe.ISVProdID {
		s.Add(id, attest.Fail, "the Quoting Enclave's ISVPRODID is %d, not the TD QE's %d", qe.ISVProdID, qi.IsvProdID)
		return nil
	}
	if len(qi.Miscselect.Bytes) != 4 || len(qi.MiscselectMask.Bytes) != 4 || len(qi.Attributes.Bytes) != 16 || len(qi.AttributesMask.Bytes) != 16 {
		s.Add(id, attest.Fail, "the QE identity's MISCSELECT or attributes (with their masks) have the wrong length")
		return nil
	}
	var misc [4]byte
	binary.LittleEndian.PutUint32(misc[:], qe.MiscSelect)
	if !maskedEqual(misc[:], qi.Miscselect.Bytes, qi.MiscselectMask.Bytes) {
		s.Add(id, attest.Fail, "the Quoting Enclave's MISCSELECT %s does not match the QE identity's %s (mask %s)", hex.EncodeToString(misc[:]), hex.EncodeToString(qi.Miscselect.Bytes), hex.EncodeToString(qi.MiscselectMask.Bytes))
		return nil
	}
	if !maskedEqual(qe.Attributes[:], qi.Attributes.Bytes, qi.AttributesMask.Bytes) {
		s.Add(id, attest.Fail, "the Quoting Enclave's attributes %s do not match the QE identity's %s (mask %s): it may be a debug enclave", hex.EncodeToString(qe.Attributes[:]), hex.EncodeToString(qi.Attributes.Bytes), hex.EncodeToString(qi.AttributesMask.Bytes))
		return nil
	}
	var r *TCBResult
	for _, l := range qi.TcbLevels {
		if l.Tcb.Isvsvn <= uint32(qe.ISVSVN) {
			r = &TCBResult{Status: string(l.TcbStatus), Date: l.TcbDate, Advisories: l.AdvisoryIDs}
			break
		}
	}
	if r == nil {
		s.Add(id, attest.Fail, "no TCB level of the QE identity is met by the Quoting Enclave's ISVSVN %d", qe.ISVSVN)
		return nil
	}
	judge(s, id, fmt.Sprintf("the Quoting Enclave's (ISVSVN %d)", qe.ISVSVN), *r, tdxPolicy(env.Policy))
	if r.Status == "UpToDate" {
		env.Ledger.Verify("tdx.qe", "The quote was made by Intel's current TD Quoting Enclave.")
	}
	return r
}

func maskedEqual(got, want, mask []byte) bool {
	if len(got) != len(want) || len(want) != len(mask) {
		return false
	}
	for i := range got {
		if got[i]&mask[i] != want[i]&mask[i] {
			return false
		}
	}
	return true
}
