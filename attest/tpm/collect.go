package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// DefaultDevice is the kernel's TPM resource manager device.
const DefaultDevice = "/dev/tpmrm0"

// DefaultEventLogPath is where Linux exposes the firmware event log.
const DefaultEventLogPath = "/sys/kernel/security/tpm0/binary_bios_measurements"

// OpenDevice opens a TPM character device (DefaultDevice on real machines).
func OpenDevice(path string) (transport.TPMCloser, error) {
	if path == "" {
		path = DefaultDevice
	}
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open TPM %s: %v", path, err)
	}
	return t, nil
}

// ReadEventLog reads the firmware event log from securityfs (path ""
// means DefaultEventLogPath), bounded by MaxEventLogSize.
func ReadEventLog(path string) ([]byte, error) {
	if path == "" {
		path = DefaultEventLogPath
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxEventLogSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxEventLogSize {
		return nil, fmt.Errorf("event log %s is larger than %d bytes", path, MaxEventLogSize)
	}
	return data, nil
}

// streamTPM speaks raw TPM 2.0 commands over a stream, as swtpm's socket
// interface and the kernel's devices do.
type streamTPM struct {
	mu   sync.Mutex
	conn net.Conn
}

// OpenStream returns a transport over a connection that carries raw TPM
// commands and responses (for example swtpm's --server socket).
func OpenStream(conn net.Conn) transport.TPMCloser { return &streamTPM{conn: conn} }

// Send sends one command and reads its response.
func (s *streamTPM) Send(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.conn.Write(cmd); err != nil {
		return nil, err
	}
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(s.conn, hdr); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[2:])
	if n < 10 || n > 1<<16 {
		return nil, fmt.Errorf("TPM response size %d is invalid", n)
	}
	rsp := make([]byte, n)
	copy(rsp, hdr)
	if _, err := io.ReadFull(s.conn, rsp[10:]); err != nil {
		return nil, err
	}
	return rsp, nil
}

// Close closes the connection.
func (s *streamTPM) Close() error { return s.conn.Close() }

// AKTemplateECC is sworn's attestation key: a restricted ECDSA P-256
// signing key with SHA-256, created as a primary in the endorsement
// hierarchy (so the same TPM gives the same AK).
var AKTemplateECC = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true,
		Restricted: true, SignEncrypt: true, NoDA: true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
	}),
}

// CollectOptions configure Collect.
type CollectOptions struct {
	// QualifyingData goes into every quote: the node's binding (64 bytes).
	QualifyingData []byte
	// Banks to quote; default SHA-256 and SHA-384. Banks the TPM does not
	// have are an error.
	Banks []Alg
	// PCRs to quote; default 0–23.
	PCRs []int
	// EventLog to staple (ReadEventLog on real machines).
	EventLog []byte
	// AKTemplate overrides AKTemplateECC.
	AKTemplate *tpm2.TPMTPublic
}

// Collect creates (or re-creates) the AK, quotes the PCRs of each bank
// (one quote per bank) with the qualifying data, reads the quoted values,
// and returns the evidence. It works on /dev/tpmrm0, swtpm and the
// simulator alike.
func Collect(t transport.TPM, opts CollectOptions) (*Evidence, error) {
	if len(opts.QualifyingData) > 64 {
		return nil, errors.New("qualifying data is longer than 64 bytes")
	}
	banks := opts.Banks
	if len(banks) == 0 {
		banks = []Alg{SHA256, SHA384}
	}
	pcrs := opts.PCRs
	if len(pcrs) == 0 {
		for i := range NumPCRs {
			pcrs = append(pcrs, i)
		}
	}
	tmpl := AKTemplateECC
	if opts.AKTemplate != nil {
		tmpl = *opts.AKTemplate
	}
	cp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("create AK: %v", err)
	}
	defer tpm2.FlushContext{FlushHandle: cp.ObjectHandle}.Execute(t)
	akPub, err := cp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("AK public: %v", err)
	}
	ev := &Evidence{Version: EvidenceVersion, AK: tpm2.Marshal(*akPub), EventLog: opts.EventLog}
	for _, b := range banks {
		var q *Quote
		// PCRs may change between the quote and the read; retry a few times.
		for range 3 {
			if q, err = quoteBank(t, cp, b, pcrs, opts.QualifyingData); err == nil {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		ev.Quotes = append(ev.Quotes, *q)
	}
	return ev, nil
}

func selection(b Alg, pcrs []int) tpm2.TPMLPCRSelection {
	bitmap := make([]byte, 3)
	for _, i := range pcrs {
		if i >= 0 && i < 24 {
			bitmap[i/8] |= 1 << (i % 8)
		}
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgID(b), PCRSelect: bitmap}}}
}

func quoteBank(t transport.TPM, ak *tpm2.CreatePrimaryResponse, b Alg, pcrs []int, qd []byte) (*Quote, error) {
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.NamedHandle{Handle: ak.ObjectHandle, Name: ak.Name},
		QualifyingData: tpm2.TPM2BData{Buffer: qd},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      selection(b, pcrs),
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("quote %s PCRs: %v", b, err)
	}
	q := &Quote{Attest: slices.Clone(rsp.Quoted.Bytes()), Signature: tpm2.Marshal(rsp.Signature)}
	vals, err := ReadPCRs(t, b, pcrs)
	if err != nil {
		return nil, err
	}
	for _, i := range pcrs {
		q.PCRs = append(q.PCRs, PCR{b, uint8(i), vals[i]})
	}
	pq, err := ParseQuote(*q)
	if err != nil {
		return nil, err
	}
	if err := pq.CheckPCRDigest(); err != nil {
		return nil, fmt.Errorf("PCRs changed during the quote: %v", err)
	}
	return q, nil
}

// ReadPCRs reads PCR values of one bank (TPM2_PCR_Read returns at most 8
// per call).
func ReadPCRs(t transport.TPM, b Alg, pcrs []int) (map[int][]byte, error) {
	out := map[int][]byte{}
	todo := slices.Clone(pcrs)
	for len(todo) > 0 {
		rsp, err := tpm2.PCRRead{PCRSelectionIn: selection(b, todo)}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("read %s PCRs: %v", b, err)
		}
		var got []int
		for _, sel := range rsp.PCRSelectionOut.PCRSelections {
			for i, by := range sel.PCRSelect {
				for bit := range 8 {
					if by&(1<<bit) != 0 {
						got = append(got, i*8+bit)
					}
				}
			}
		}
		if len(got) == 0 || len(got) != len(rsp.PCRValues.Digests) {
			return nil, fmt.Errorf("the TPM has no %s bank (or returned no PCRs)", b)
		}
		for k, i := range got {
			out[i] = slices.Clone(rsp.PCRValues.Digests[k].Buffer)
		}
		todo = slices.DeleteFunc(todo, func(i int) bool { _, ok := out[i]; return ok })
	}
	return out, nil
}

// Extend extends one event's digests (one per bank) into a PCR, as
// firmware does; the simulator and tests use it to replay a synthetic log
// into the TPM.
func Extend(t transport.TPM, pcr int, digests map[Alg][]byte) error {
	var vals []tpm2.TPMTHA
	for _, b := range []Alg{SHA1, SHA256, SHA384, SHA512} {
		if d, ok := digests[b]; ok {
			vals = append(vals, tpm2.TPMTHA{HashAlg: tpm2.TPMAlgID(b), Digest: d})
		}
	}
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: vals},
	}.Execute(t)
	if err != nil {
		return fmt.Errorf("extend PCR %d: %v", pcr, err)
	}
	return nil
}
