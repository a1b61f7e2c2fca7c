package tpm

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf16"

	"github.com/google/go-eventlog/extract"
	pb "github.com/google/go-eventlog/proto/state"
	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TCG event types this package reads (TCG PC Client PFP, §10.4.1).
const (
	evNoAction        = 0x00000003
	evSeparator       = 0x00000004
	evAction          = 0x00000005
	evEventTag        = 0x00000006
	evSCRTMVersion    = 0x00000008
	evIPL             = 0x0000000d
	evEFIBootServices = 0x80000003
	evEFIAction       = 0x80000007
)

// NodePCR is the PCR into which sworn's node software measures itself
// before it creates its keys: PCR 15, which is not resettable, is not used
// by firmware or bootloaders, and which systemd uses only for
// machine-id/file-system identity after the initrd (sworn node images do not
// enable those measurements). See docs/tpm.md.
const NodePCR = 15

// NodeEventPrefix starts the data of the node software's own measurement
// event: an EV_IPL event on NodePCR whose data is
// "sworn-node-v1 sha256:<hex digest of the node binary>" and whose digest in
// every bank is the hash of that data.
const NodeEventPrefix = "sworn-node-v1 sha256:"

// NodeEventData returns the event data of the node software's measurement
// of a binary with the given SHA-256 digest.
func NodeEventData(binarySHA256 []byte) []byte {
	return []byte(NodeEventPrefix + hex.EncodeToString(binarySHA256))
}

// Event is a verified event of a replayed log, as claims show it.
type Event struct {
	Seq    int    `json:"seq"`
	PCR    int    `json:"pcr"`
	Type   string `json:"type"`
	Digest string `json:"digest"`
	Data   string `json:"data,omitempty"`
}

// UKISection is one UKI section that systemd-stub measured into PCR 11.
type UKISection struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// LogClaims are what the replayed event log says about the boot. Only
// events that replayed to quoted PCR values contribute.
type LogClaims struct {
	Bank          string        `json:"bank"`
	Events        int           `json:"events"`
	SecureBoot    *SecureBoot   `json:"secure_boot,omitempty"`
	EFIApps       []string      `json:"efi_apps,omitempty"`
	KernelCmdline string        `json:"kernel_cmdline,omitempty"`
	UKI           []UKISection  `json:"uki,omitempty"`
	PCR12         []Event       `json:"pcr12,omitempty"`
	PCR13         []Event       `json:"pcr13,omitempty"`
	NodeSoftware  []string      `json:"node_software,omitempty"`
	Platform      string        `json:"platform,omitempty"`
	Notes         []string      `json:"notes,omitempty"`
	verified      []tcg.Event   // the verified events
	hash          crypto.Hash   // the bank's hash
	perPCR        map[int][]int // event sequence numbers per PCR
}

// SecureBoot is the Secure Boot state the log records (PCR 7).
type SecureBoot struct {
	Enabled   bool     `json:"enabled"`
	PK        []string `json:"pk,omitempty"`
	KEK       []string `json:"kek,omitempty"`
	DB        []string `json:"db,omitempty"`
	DBHashes  int      `json:"db_hashes"`
	DBXCerts  []string `json:"dbx_certs,omitempty"`
	DBXHashes int      `json:"dbx_hashes"`
	Authority []string `json:"authority,omitempty"`
}

// ReplayError says which PCRs the event log does not reproduce, and, where
// it can tell, which event is at fault.
type ReplayError struct {
	Bank Alg
	PCRs []int
	// Details has one sentence per PCR.
	Details []string
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("event log does not replay to the quoted %s PCRs %v: %s", e.Bank, e.PCRs, strings.Join(e.Details, "; "))
}

// ReplayEventLog parses a TCG PC Client crypto-agile event log with
// go-eventlog, replays it against the given (quoted) PCR values of one
// bank, and extracts claims from the events that replayed. A PCR whose
// replay differs is a *ReplayError naming the PCR and, where possible, the
// event.
func ReplayEventLog(raw []byte, bank Alg, pcrs map[int][]byte) (*LogClaims, error) {
	el, err := openLog(raw)
	if err != nil {
		return nil, err
	}
	return replayClaims(el, bank, pcrs)
}

// ReplayBanks replays the event log against every quoted bank that the log
// also records, each bank by itself, so that a digest altered in any one
// bank is found; claims come from the strongest of them (sha384 > sha256 >
// sha1). It returns the replayed banks, strongest first. A bank that does
// not replay is a *ReplayError naming it and the PCR; a log that records
// none of the quoted banks is an error too.
func ReplayBanks(raw []byte, quoted PCRs) (*LogClaims, []Alg, error) {
	el, err := openLog(raw)
	if err != nil {
		return nil, nil, err
	}
	var banks []Alg
	for _, b := range replayOrder {
		if len(quoted[b]) > 0 && slices.Contains(el.Algs, register.HashAlg(b)) {
			banks = append(banks, b)
		}
	}
	if len(banks) == 0 {
		logged := make([]Alg, 0, len(el.Algs))
		for _, a := range el.Algs {
			logged = append(logged, Alg(a))
		}
		return nil, nil, fmt.Errorf("the event log records the banks %s, none of which is quoted (quoted: %s): it cannot be replayed", strings.Join(bankNames(logged), ", "), quotedBanks(quoted))
	}
	// Weaker banks first: they are cheap to replay, and claims are
	// extracted only once, from the strongest.
	for _, b := range banks[1:] {
		if _, err := replayParsed(el, b, quoted[b]); err != nil {
			return nil, nil, err
		}
	}
	c, err := replayClaims(el, banks[0], quoted[banks[0]])
	if err != nil {
		return nil, nil, err
	}
	return c, banks, nil
}

// replayOrder lists the banks go-eventlog replays, strongest first.
var replayOrder = []Alg{SHA384, SHA256, SHA1}

func quotedBanks(p PCRs) string {
	var out []string
	for _, b := range []Alg{SHA1, SHA256, SHA384, SHA512} {
		if len(p[b]) > 0 {
			out = append(out, b.String())
		}
	}
	return strings.Join(out, ", ")
}

// replayClaims replays one bank of a parsed log and extracts claims from
// the events that replayed.
func replayClaims(el *tcg.EventLog, bank Alg, pcrs map[int][]byte) (*LogClaims, error) {
	events, err := replayParsed(el, bank, pcrs)
	if err != nil {
		return nil, err
	}
	c := &LogClaims{Bank: bank.String(), Events: len(events), verified: events, hash: bank.Hash(), perPCR: map[int][]int{}}
	for _, e := range events {
		c.perPCR[e.Index] = append(c.perPCR[e.Index], int(e.Num()))
	}
	if err := c.safeExtract(); err != nil {
		return nil, err
	}
	return c, nil
}

// safeExtract is extract, with go-eventlog's panics on events it cannot
// handle (an unknown event type on a PCR it reads) turned into an error.
func (c *LogClaims) safeExtract() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("event log is malformed (%v)", r)
		}
	}()
	return c.extract()
}

// openLog checks a log's size and parses it.
func openLog(raw []byte) (*tcg.EventLog, error) {
	if len(raw) == 0 {
		return nil, errors.New("event log is empty")
	}
	if len(raw) > MaxEventLogSize {
		return nil, fmt.Errorf("event log is %d bytes; the limit is %d", len(raw), MaxEventLogSize)
	}
	return parseLog(raw)
}

// replayParsed replays a parsed log against the given PCR values of one
// bank: the events it returns are those that replayed.
func replayParsed(el *tcg.EventLog, bank Alg, pcrs map[int][]byte) ([]tcg.Event, error) {
	h := bank.Hash()
	if h == 0 {
		return nil, fmt.Errorf("unknown bank %s", bank)
	}
	idx := make([]int, 0, len(pcrs))
	for i := range pcrs {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	mrs := make([]register.MR, 0, len(idx))
	for _, i := range idx {
		mrs = append(mrs, register.PCR{Index: i, Digest: pcrs[i], DigestAlg: h})
	}
	events, err := safeVerify(el, mrs)
	if err != nil {
		var re tcg.ReplayError
		if errors.As(err, &re) {
			return nil, diagnose(el, bank, pcrs, re.InvalidMRs)
		}
		return nil, fmt.Errorf("event log replay (%s): %v", bank, err)
	}
	for seq, e := range el.Events(register.HashAlg(bank)) {
		if e.Type != evNoAction && (e.Index < 0 || e.Index >= NumPCRs) {
			return nil, fmt.Errorf("event log: event #%d (%s) is on PCR %d, but a PC Client TPM has PCRs 0 to %d: the log was altered", seq, typeName(uint32(e.Type)), e.Index, NumPCRs-1)
		}
	}
	for _, e := range events {
		if !hashesData(uint32(e.Type), e.Index) {
			continue
		}
		d := h.New()
		d.Write(e.Data)
		if !bytes.Equal(d.Sum(nil), e.Digest) {
			return nil, fmt.Errorf("event log: PCR %d event #%d (%s) replays, but its %s digest is not the hash of its data %x, as this event type requires: the event data was altered", e.Index, e.Num(), typeName(uint32(e.Type)), bank, e.Data)
		}
	}
	return events, nil
}

func parseLog(raw []byte) (el *tcg.EventLog, err error) {
	defer func() {
		if r := recover(); r != nil {
			el, err = nil, fmt.Errorf("event log is malformed (%v)", r)
		}
	}()
	el, err = tcg.ParseEventLog(raw, tcg.ParseOpts{})
	if err != nil {
		return nil, fmt.Errorf("event log is not a TCG PC Client event log: %v", err)
	}
	return el, nil
}

func safeVerify(el *tcg.EventLog, mrs []register.MR) (ev []tcg.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, fmt.Errorf("event log is malformed (%v)", r)
		}
	}()
	return el.Verify(mrs)
}

// diagnose replays each failing PCR by itself to say what went wrong.
func diagnose(el *tcg.EventLog, bank Alg, pcrs map[int][]byte, bad []int) *ReplayError {
	slices.Sort(bad)
	re := &ReplayError{Bank: bank, PCRs: bad}
	h := bank.Hash()
	all := el.Events(register.HashAlg(bank))
	for _, i := range bad {
		var replay []byte
		var suspect []string
		n, missing := 0, 0
		for seq, e := range all {
			if e.Index != i || e.Type == evNoAction {
				continue
			}
			n++
			if len(e.Digest) != h.Size() {
				missing++
				continue
			}
			if replay == nil {
				replay = make([]byte, h.Size())
			}
			hh := h.New()
			hh.Write(replay)
			hh.Write(e.Digest)
			replay = hh.Sum(nil)
			if digestOfData(uint32(e.Type), i) {
				d := h.New()
				d.Write(e.Data)
				if !bytes.Equal(d.Sum(nil), e.Digest) {
					suspect = append(suspect, fmt.Sprintf("event #%d (%s) has a digest that is not the hash of its data", seq, typeName(uint32(e.Type))))
				}
			}
		}
		var msg string
		switch {
		case missing > 0:
			msg = fmt.Sprintf("PCR %d: %d of its %d events carry no %s digest", i, missing, n, bank)
		case n == 0:
			msg = fmt.Sprintf("PCR %d: the quote says %s, but the log has no event for it", i, hex.EncodeToString(pcrs[i]))
		default:
			msg = fmt.Sprintf("PCR %d: its %d events replay to %s, but the quote says %s", i, n, hex.EncodeToString(replay), hex.EncodeToString(pcrs[i]))
			if len(suspect) > 0 {
				msg += " (" + strings.Join(suspect, ", ") + ")"
			} else {
				msg += " (an event on this PCR was altered, removed or added, or the PCR was extended beyond the log)"
			}
		}
		re.Details = append(re.Details, msg)
	}
	return re
}

// hashesData reports whether the TCG PC Client PFP fixes an event's
// digest to the hash of its data: separators, EFI actions and the S-CRTM
// version on PCR 0. Replay refuses such an event whose data does not hash
// to its digest, since the data is not otherwise measured.
func hashesData(typ uint32, pcr int) bool {
	switch typ {
	case evSeparator, evEFIAction:
		return true
	case evSCRTMVersion:
		return pcr == 0
	}
	return false
}

// digestOfData reports whether an event of this type on this PCR must have
// the hash of its data as its digest: those of hashesData, and the EV_IPL
// events of sworn's node (PCR 15) and systemd-stub (PCRs 12 and 13), which
// diagnose names as suspects.
func digestOfData(typ uint32, pcr int) bool {
	return hashesData(typ, pcr) || typ == evIPL && (pcr == NodePCR || pcr == 12 || pcr == 13)
}

func typeName(t uint32) string {
	if n, ok := tcg.EventType(t).KnownName(); ok {
		return n
	}
	return fmt.Sprintf("type 0x%08x", t)
}

func (c *LogClaims) note(format string, args ...any) {
	c.Notes = append(c.Notes, fmt.Sprintf(format, args...))
}

func (c *LogClaims) extract() error {
	events := c.verified
	if p, err := extract.PlatformState(c.hash, events); err == nil && p != nil {
		if v := p.GetScrtmVersionId(); len(v) > 0 {
			c.Platform = printable(v)
		} else if g := p.GetGceVersion(); g != 0 {
			c.Platform = fmt.Sprintf("GCE virtual firmware %d", g)
		}
	}
	c.secureBoot(events)
	if efi, err := extract.EfiState(c.hash, events, extract.TPMRegisterConfig, extract.Opts{AllowEFIAppBeforeCallingEvent: true}); err != nil {
		c.note("EFI applications not extracted: %v", err)
	} else if efi != nil {
		for _, a := range efi.GetApps() {
			c.EFIApps = append(c.EFIApps, hex.EncodeToString(a.GetDigest()))
		}
	}
	if grub, err := extract.GrubStateFromTPMLog(c.hash, events); err == nil && grub != nil && len(grub.GetCommands()) > 0 {
		if k, err := extract.LinuxKernelStateFromGRUB(grub); err == nil {
			c.KernelCmdline = k.GetCommandLine()
		}
	}
	// systemd-stub: PCR 11 pairs (name, contents), PCR 12/13 loads, and
	// sworn's node measurement on PCR 15.
	uki, err := UKISections(events, 11, c.hash, "PCR 11")
	if err != nil {
		return err
	}
	c.UKI = append(c.UKI, uki...)
	for _, e := range events {
		t := uint32(e.Type)
		switch {
		case (e.Index == 12 || e.Index == 13) && (t == evIPL || t == evEventTag):
			ev := Event{Seq: int(e.Num()), PCR: e.Index, Type: typeName(t), Digest: hex.EncodeToString(e.Digest)}
			if s, ok := utf16z(e.Data); ok {
				ev.Data = s
			} else {
				ev.Data = printable(e.Data)
			}
			if t == evIPL && e.Index == 12 {
				d := c.hash.New()
				d.Write(e.Data)
				if bytes.Equal(d.Sum(nil), e.Digest) && ev.Data != "" {
					c.KernelCmdline = ev.Data
				}
			}
			if e.Index == 12 {
				c.PCR12 = append(c.PCR12, ev)
			} else {
				c.PCR13 = append(c.PCR13, ev)
			}
		case e.Index == NodePCR && t == evIPL && bytes.HasPrefix(e.Data, []byte(NodeEventPrefix)):
			d := c.hash.New()
			d.Write(e.Data)
			if !bytes.Equal(d.Sum(nil), e.Digest) {
				return fmt.Errorf("PCR %d event #%d (node software measurement) has a digest that is not the hash of its data %q: the event data was altered", NodePCR, e.Num(), e.Data)
			}
			v := strings.TrimPrefix(string(e.Data), NodeEventPrefix)
			if b, err := hex.DecodeString(v); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("PCR %d event #%d: node software measurement %q is not a SHA-256 digest", NodePCR, e.Num(), v)
			}
			c.NodeSoftware = append(c.NodeSoftware, v)
		}
	}
	return nil
}

// secureBoot extracts the Secure Boot state (PCR 7, with the driver loads
// of PCR 2) with go-eventlog, through a cache keyed by the SHA-256 of
// everything go-eventlog reads to compute it: the bank and, for every
// verified event on those two PCRs, its sequence number, PCR, type, digest
// and data. Parsing the PK, KEK, db and dbx variables and their
// certificates is most of the cost of claim extraction, and machines of a
// fleet boot the same firmware with the same variables; an equal key means
// equal input, so a hit is the result go-eventlog would give again.
func (c *LogClaims) secureBoot(events []tcg.Event) {
	key := secureBootKey(c.hash, events)
	sbCache.RLock()
	r, ok := sbCache.m[key]
	sbCache.RUnlock()
	if !ok {
		r = secureBootState(events)
		sbCache.Lock()
		if sbCache.m == nil || len(sbCache.m) >= maxSecureBootStates {
			sbCache.m = map[[sha256.Size]byte]sbResult{}
		}
		sbCache.m[key] = r
		sbCache.Unlock()
	}
	if r.note != "" {
		c.Notes = append(c.Notes, r.note)
	}
	if r.sb != nil {
		sb := *r.sb
		sb.PK, sb.KEK, sb.DB = slices.Clone(sb.PK), slices.Clone(sb.KEK), slices.Clone(sb.DB)
		sb.DBXCerts, sb.Authority = slices.Clone(sb.DBXCerts), slices.Clone(sb.Authority)
		c.SecureBoot = &sb
	}
}

// sbResult is what secureBootState found: a state, or a note saying why
// there is none.
type sbResult struct {
	sb   *SecureBoot
	note string
}

var sbCache struct {
	sync.RWMutex
	m map[[sha256.Size]byte]sbResult
}

// maxSecureBootStates bounds sbCache; when it is full it starts over.
const maxSecureBootStates = 256

func secureBootKey(h crypto.Hash, events []tcg.Event) [sha256.Size]byte {
	k := sha256.New()
	var b [8]byte
	u32 := func(v uint32) {
		binary.LittleEndian.PutUint32(b[:4], v)
		k.Write(b[:4])
	}
	k.Write([]byte("sworn secure boot state v1\x00"))
	u32(uint32(h))
	for _, e := range events {
		if i := e.MRIndex(); i != extract.TPMRegisterConfig.SecureBootIdx && i != extract.TPMRegisterConfig.FirmwareDriverIdx {
			continue
		}
		u32(e.Num())
		u32(e.MRIndex())
		u32(uint32(e.Type))
		u32(uint32(len(e.Digest)))
		k.Write(e.Digest)
		u32(uint32(len(e.Data)))
		k.Write(e.Data)
	}
	var out [sha256.Size]byte
	k.Sum(out[:0])
	return out
}

func secureBootState(events []tcg.Event) sbResult {
	sb, err := extract.SecureBootState(events, extract.TPMRegisterConfig, extract.Opts{AllowEmptySBVar: true})
	if err != nil {
		return sbResult{note: fmt.Sprintf("Secure Boot state not extracted: %v", err)}
	}
	if sb == nil {
		return sbResult{}
	}
	return sbResult{sb: &SecureBoot{
		Enabled:   sb.GetEnabled(),
		PK:        certNames(sb.GetPk()),
		KEK:       certNames(sb.GetKek()),
		DB:        certNames(sb.GetDb()),
		DBHashes:  len(sb.GetDb().GetHashes()),
		DBXCerts:  certNames(sb.GetDbx()),
		DBXHashes: len(sb.GetDbx().GetHashes()),
		Authority: certNames(sb.GetAuthority()),
	}}
}

// UKISections reads the UKI sections systemd-stub measured into register
// index (PCR 11 in a TPM log; CC MR 3, i.e. RTMR2, in a TDX CCEL) of a
// replayed log: EV_IPL pairs of the section name (UTF-16 data, digest =
// hash(name ‖ NUL)) and its contents. where names the register in errors.
func UKISections(events []tcg.Event, index int, h crypto.Hash, where string) ([]UKISection, error) {
	var out []UKISection
	var pending *UKISection
	for _, e := range events {
		if e.Index != index || uint32(e.Type) != evIPL {
			continue
		}
		name, ok := utf16z(e.Data)
		if !ok {
			return nil, fmt.Errorf("%s event #%d (EV_IPL) has data that is not a UTF-16 section name: the log is not what systemd-stub writes", where, e.Num())
		}
		nh := h.New()
		nh.Write([]byte(name))
		nh.Write([]byte{0})
		if pending == nil && bytes.Equal(nh.Sum(nil), e.Digest) {
			pending = &UKISection{Name: name}
			continue
		}
		if pending == nil || pending.Name != name {
			return nil, fmt.Errorf("%s event #%d measures UKI section %q without its name event first: the log is not what systemd-stub writes", where, e.Num(), name)
		}
		pending.Digest = hex.EncodeToString(e.Digest)
		out = append(out, *pending)
		pending = nil
	}
	if pending != nil {
		return nil, fmt.Errorf("%s: UKI section %s was named but its contents event is missing or altered: the log is not what systemd-stub writes", where, pending.Name)
	}
	return out, nil
}

// utf16z decodes UTF-16LE text with an optional terminating NUL.
func utf16z(b []byte) (string, bool) {
	if len(b) < 2 || len(b)%2 != 0 || len(b) > 1<<16 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	for _, r := range u {
		if r == 0 || (r < 0x20 && r != '\t' && r != '\n') {
			return "", false
		}
	}
	return string(utf16.Decode(u)), true
}

func printable(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return hex.EncodeToString(b)
		}
	}
	return string(b)
}

// certNames names each certificate of a Secure Boot database: its subject
// and the SHA-256 of its DER, or the well-known name go-eventlog gives it.
func certNames(db *pb.Database) []string {
	var out []string
	for _, c := range db.GetCerts() {
		if der := c.GetDer(); der != nil {
			d := sha256.Sum256(der)
			out = append(out, fmt.Sprintf("%s (sha256:%s)", certSubject(d, der), hex.EncodeToString(d[:])))
			continue
		}
		out = append(out, c.GetWellKnown().String())
	}
	return out
}

// subjects caches the subject names of Secure Boot certificates by the
// SHA-256 of their DER. go-eventlog has already parsed each certificate
// (and rejected the log if one did not parse) by the time certNames sees
// it, but hands back only the DER; a fleet's logs carry the same few
// vendor certificates, so parsing each once is enough. The key is the
// digest of the whole DER, so a hit names exactly the bytes it was
// computed from. The cache is bounded: past maxSubjects entries, names are
// computed without being kept.
var subjects struct {
	sync.RWMutex
	m map[[sha256.Size]byte]string
}

const maxSubjects = 4096

func certSubject(digest [sha256.Size]byte, der []byte) string {
	subjects.RLock()
	name, ok := subjects.m[digest]
	subjects.RUnlock()
	if ok {
		return name
	}
	name = subjectName(der)
	subjects.Lock()
	if subjects.m == nil {
		subjects.m = map[[sha256.Size]byte]string{}
	}
	if len(subjects.m) < maxSubjects {
		subjects.m[digest] = name
	}
	subjects.Unlock()
	return name
}

// subjectName reads a certificate's subject without parsing the rest: the
// certificate was already parsed in full by go-eventlog; only its subject is
// needed here.
func subjectName(der []byte) string {
	const bad = "unparsable certificate"
	in := cryptobyte.String(der)
	var cert, tbs, subject cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.SkipASN1(cbasn1.INTEGER) || // serial
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature algorithm
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // issuer
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) {
		return bad
	}
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(subject, &rdn); err != nil || len(rest) != 0 {
		return bad
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdn)
	return n.String()
}

// ComputePCRs replays an event log by itself, without a quote: the PCR
// values of one bank that the log claims. They are untrusted until a quote
// covers them; sworn measure eventlog prints them.
func ComputePCRs(raw []byte, bank Alg) (map[int][]byte, error) {
	h := bank.Hash()
	if h == 0 {
		return nil, fmt.Errorf("unknown bank %s", bank)
	}
	el, err := openLog(raw)
	if err != nil {
		return nil, err
	}
	out := map[int][]byte{}
	for seq, e := range el.Events(register.HashAlg(bank)) {
		if e.Type == evNoAction {
			if e.Index == 0 && len(e.Data) == 17 && strings.HasPrefix(string(e.Data), "StartupLocality") {
				v := make([]byte, h.Size())
				v[len(v)-1] = e.Data[16]
				out[0] = v
			}
			continue
		}
		if len(e.Digest) != h.Size() {
			return nil, fmt.Errorf("event #%d on PCR %d has no %s digest: the log does not record this bank", seq, e.Index, bank)
		}
		cur, ok := out[e.Index]
		if !ok {
			cur = make([]byte, h.Size())
		}
		d := h.New()
		d.Write(cur)
		d.Write(e.Digest)
		out[e.Index] = d.Sum(nil)
	}
	return out, nil
}
