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
)

// MaxPESize bounds a PE image (a UKI with its initrd) read for measuring.
const MaxPESize = 512 << 20

// UKISectionOrder is the order in which systemd-stub measures a UKI's
// sections into PCR 11 (UAPI UKI specification; .pcrsig is not measured).
var UKISectionOrder = []string{".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".dtbauto", ".hwids", ".efifw", ".uname", ".sbat", ".pcrpkey", ".profile"}

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
// present section in canonical order, extend H(name ‖ NUL) then
// H(contents), starting from zero.
func (p *PE) MeasureUKI(h crypto.Hash) *UKIMeasurement {
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
	for _, name := range UKISectionOrder {
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
