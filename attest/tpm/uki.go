package tpm

import (
	"bytes"
	"crypto"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// MaxPESize bounds a PE image (a UKI with its initrd) read for measuring.
const MaxPESize = 512 << 20

// UKISectionOrder is the order in which systemd-stub measures a UKI's
// sections into PCR 11: systemd's canonical order (src/fundamental/uki.h,
// the UAPI UKI specification) less .pcrsig, which is never measured.
// Which of them a stub knows depends on its version: systemd 252 knows
// .linux .osrel .cmdline .initrd .splash .dtb .pcrpkey (the sections its
// systemd-measure --help lists); later versions added .uname, .sbat,
// .ucode, .profile, .dtbauto, .hwids and .efifw. A stub skips a section it
// does not know, so measure with the sections of the stub that boots (see
// ParseUKISections).
var UKISectionOrder = []string{".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrpkey", ".profile", ".dtbauto", ".hwids", ".efifw"}

// ParseUKISections reads a list of section names (".linux,.osrel", the
// dots optional) for MeasureUKISections, and returns them in UKISectionOrder,
// the order in which they are measured whatever the order given. It refuses
// unknown names, duplicates and .pcrsig (never measured).
func ParseUKISections(list string) ([]string, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !strings.HasPrefix(n, ".") {
			n = "." + n
		}
		switch {
		case n == ".pcrsig":
			return nil, errors.New(".pcrsig is never measured into PCR 11 (it signs the PCR 11 values)")
		case !slices.Contains(UKISectionOrder, n):
			return nil, fmt.Errorf("unknown UKI section %q; measured sections are %s", n, strings.Join(UKISectionOrder, " "))
		case want[n]:
			return nil, fmt.Errorf("UKI section %s is given twice", n)
		}
		want[n] = true
	}
	if len(want) == 0 {
		return nil, errors.New("no UKI section is named")
	}
	var out []string
	for _, n := range UKISectionOrder {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// DefaultPhases are the boot-phase paths systemd-measure predicts PCR 11
// for when no --phase is given: from the initrd's start to the system's
// being ready.
var DefaultPhases = []string{"enter-initrd", "enter-initrd:leave-initrd", "enter-initrd:leave-initrd:sysinit", "enter-initrd:leave-initrd:sysinit:ready"}

// ParsePhase checks a boot-phase path as systemd-measure --phase takes it
// ("enter-initrd:leave-initrd") and returns its words. An empty path is
// PCR 11 before any phase.
func ParsePhase(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	words := strings.Split(path, ":")
	for _, w := range words {
		if w == "" || len(w) > 64 || strings.ContainsFunc(w, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
		}) {
			return nil, fmt.Errorf("boot phase %q: each word between colons must be 1 to 64 letters, digits, '-', '_' or '.' (e.g. enter-initrd:leave-initrd)", path)
		}
	}
	return words, nil
}

// PE is a parsed PE/COFF image.
type PE struct {
	raw  []byte
	file *pe.File
	// certTable is the file range of the Authenticode signature table.
	certOff, certLen int
	// checksumOff and certDirOff are the header fields Authenticode skips.
	checksumOff, certDirOff int
	headersEnd              int
}

// ParsePE parses a PE/COFF image (an EFI application such as a UKI).
func ParsePE(raw []byte) (p *PE, err error) {
	if len(raw) > MaxPESize {
		return nil, fmt.Errorf("PE image is %d bytes; the limit is %d", len(raw), MaxPESize)
	}
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("PE image is malformed (%v)", r)
		}
	}()
	f, err := pe.NewFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not a PE image: %v", err)
	}
	if len(raw) < 0x40 {
		return nil, errors.New("PE image is truncated")
	}
	peOff := int(binary.LittleEndian.Uint32(raw[0x3c:]))
	optOff := peOff + 4 + 20
	p = &PE{raw: raw, file: f, checksumOff: optOff + 64}
	var dirOff int
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		dirOff = optOff + 112
		p.headersEnd = int(oh.SizeOfHeaders)
		if oh.NumberOfRvaAndSizes > 4 {
			d := oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY]
			p.certOff, p.certLen = int(d.VirtualAddress), int(d.Size)
		}
	case *pe.OptionalHeader32:
		dirOff = optOff + 96
		p.headersEnd = int(oh.SizeOfHeaders)
		if oh.NumberOfRvaAndSizes > 4 {
			d := oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY]
			p.certOff, p.certLen = int(d.VirtualAddress), int(d.Size)
		}
	default:
		return nil, errors.New("PE image has no optional header")
	}
	p.certDirOff = dirOff + 8*pe.IMAGE_DIRECTORY_ENTRY_SECURITY
	if p.certDirOff+8 > len(raw) || p.headersEnd > len(raw) || p.headersEnd < p.certDirOff+8 {
		return nil, errors.New("PE headers are truncated")
	}
	if p.certLen != 0 && (p.certOff < p.headersEnd || p.certOff+p.certLen > len(raw) || p.certOff+p.certLen < p.certOff) {
		return nil, errors.New("PE certificate table lies outside the file")
	}
	return p, nil
}

// Authenticode returns the PE image's Authenticode digest (the digest UEFI
// measures into PCR 4 as EV_EFI_BOOT_SERVICES_APPLICATION): the image
// hashed without its checksum field, its certificate-table directory entry
// and the certificate table itself, sections in file order.
func (p *PE) Authenticode(h crypto.Hash) []byte {
	d := h.New()
	d.Write(p.raw[:p.checksumOff])
	d.Write(p.raw[p.checksumOff+4 : p.certDirOff])
	d.Write(p.raw[p.certDirOff+8 : p.headersEnd])
	secs := slices.Clone(p.file.Sections)
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].Offset < secs[j].Offset })
	end := p.headersEnd
	for _, s := range secs {
		if s.Size == 0 {
			continue
		}
		lo, hi := int(s.Offset), int(s.Offset)+int(s.Size)
		if lo < 0 || hi > len(p.raw) || lo > hi {
			continue
		}
		d.Write(p.raw[lo:hi])
		end = max(end, hi)
	}
	// Data after the last section, less the certificate table.
	if end < len(p.raw) {
		extra := p.raw[end:]
		if p.certLen != 0 && p.certOff >= end {
			extra = p.raw[end:p.certOff]
			extra = append(extra[:len(extra):len(extra)], p.raw[p.certOff+p.certLen:]...)
		}
		d.Write(extra)
	}
	return d.Sum(nil)
}

// Section returns the in-memory contents of a named section: VirtualSize
// bytes, zero-padded beyond the raw data, as systemd-stub measures it.
func (p *PE) Section(name string) ([]byte, bool) {
	s := p.file.Section(name)
	if s == nil {
		return nil, false
	}
	data, err := s.Data()
	if err != nil {
		return nil, false
	}
	n := int(s.VirtualSize)
	if n == 0 {
		n = len(data)
	}
	if n <= len(data) {
		return data[:n], true
	}
	return append(data, make([]byte, n-len(data))...), true
}

// UKIMeasurement is what systemd-stub measures for a UKI.
type UKIMeasurement struct {
	// Sections lists the measured sections in measurement order with their
	// content digests.
	Sections []UKISection
	// PCR11 is PCR 11 after systemd-stub's measurements, before any boot
	// phase string is extended (systemd-measure's "no phase" value).
	PCR11 []byte
}

// MeasureUKI predicts systemd-stub's PCR 11 for a UKI in one bank: for each
// present section in UKISectionOrder, extend H(name ‖ NUL) then
// H(contents), starting from zero.
func (p *PE) MeasureUKI(h crypto.Hash) *UKIMeasurement {
	return p.MeasureUKISections(h, UKISectionOrder)
}

// MeasureUKISections is MeasureUKI for a stub that measures only the given
// sections, in the order given (ParseUKISections puts them in canonical
// order); sections absent from the image are skipped.
func (p *PE) MeasureUKISections(h crypto.Hash, sections []string) *UKIMeasurement {
	m := &UKIMeasurement{}
	pcr := make([]byte, h.Size())
	extend := func(data []byte) []byte {
		d := h.New()
		d.Write(data)
		dig := d.Sum(nil)
		e := h.New()
		e.Write(pcr)
		e.Write(dig)
		pcr = e.Sum(nil)
		return dig
	}
	for _, name := range sections {
		data, ok := p.Section(name)
		if !ok {
			continue
		}
		extend(append([]byte(name), 0))
		dig := extend(data)
		m.Sections = append(m.Sections, UKISection{Name: name, Digest: fmt.Sprintf("%x", dig)})
	}
	m.PCR11 = pcr
	return m
}

// ExtendPhases extends systemd-pcrextend's boot-phase strings (UTF-8, no
// NUL) into a PCR 11 value, as systemd-measure does for a phase path such
// as "enter-initrd:leave-initrd".
func ExtendPhases(h crypto.Hash, pcr []byte, phases ...string) []byte {
	pcr = slices.Clone(pcr)
	for _, ph := range phases {
		d := h.New()
		d.Write([]byte(ph))
		e := h.New()
		e.Write(pcr)
		e.Write(d.Sum(nil))
		pcr = e.Sum(nil)
	}
	return pcr
}
