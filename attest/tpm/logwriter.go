package tpm

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"slices"
)

// LogBuilder writes a TCG PC Client crypto-agile event log. The node uses
// it to append its own measurement event to the firmware log it staples,
// and the simulator to record a synthetic boot. (Parsing is go-eventlog's.)
type LogBuilder struct {
	banks []Alg
	buf   bytes.Buffer
}

// NewLogBuilder starts a log whose events carry digests in the given banks,
// beginning with the Spec ID event.
func NewLogBuilder(banks ...Alg) *LogBuilder {
	l := &LogBuilder{banks: slices.Clone(banks)}
	var spec bytes.Buffer
	spec.WriteString("Spec ID Event03\x00")
	binary.Write(&spec, binary.LittleEndian, uint32(0)) // platform class
	spec.Write([]byte{0, 2, 0, 2})                      // minor, major, errata, uintnSize
	binary.Write(&spec, binary.LittleEndian, uint32(len(banks)))
	for _, b := range banks {
		binary.Write(&spec, binary.LittleEndian, uint16(b))
		binary.Write(&spec, binary.LittleEndian, uint16(b.Hash().Size()))
	}
	spec.WriteByte(0) // vendor info size
	binary.Write(&l.buf, binary.LittleEndian, uint32(0))
	binary.Write(&l.buf, binary.LittleEndian, uint32(evNoAction))
	l.buf.Write(make([]byte, 20))
	binary.Write(&l.buf, binary.LittleEndian, uint32(spec.Len()))
	l.buf.Write(spec.Bytes())
	return l
}

// Add appends an event with the given digests (one per bank of the log).
func (l *LogBuilder) Add(pcr int, typ uint32, data []byte, digests map[Alg][]byte) {
	binary.Write(&l.buf, binary.LittleEndian, uint32(pcr))
	binary.Write(&l.buf, binary.LittleEndian, typ)
	binary.Write(&l.buf, binary.LittleEndian, uint32(len(l.banks)))
	for _, b := range l.banks {
		binary.Write(&l.buf, binary.LittleEndian, uint16(b))
		l.buf.Write(digests[b])
	}
	binary.Write(&l.buf, binary.LittleEndian, uint32(len(data)))
	l.buf.Write(data)
}

// Measure appends an event whose digest in each bank is the hash of
// measured, and returns those digests for extending them into the TPM.
func (l *LogBuilder) Measure(pcr int, typ uint32, data, measured []byte) map[Alg][]byte {
	d := map[Alg][]byte{}
	for _, b := range l.banks {
		h := b.Hash().New()
		h.Write(measured)
		d[b] = h.Sum(nil)
	}
	l.Add(pcr, typ, data, d)
	return d
}

// Bytes returns the log so far.
func (l *LogBuilder) Bytes() []byte { return slices.Clone(l.buf.Bytes()) }

// AppendNodeEvent appends the node software's measurement event (see
// NodeEventData) to an event log's bytes, with digests in the given banks,
// and returns the new log and the digests to extend into NodePCR.
func AppendNodeEvent(log []byte, banks []Alg, binarySHA256 []byte) ([]byte, map[Alg][]byte) {
	data := NodeEventData(binarySHA256)
	l := &LogBuilder{banks: banks}
	l.buf.Write(log)
	d := l.Measure(NodePCR, evIPL, data, data)
	return l.Bytes(), d
}

// SyntheticUKI builds a minimal PE32+ EFI application with the given
// sections (name → contents), in the given order: enough for UKI
// measurements and Authenticode, not for booting. Tests and the simulator
// use it.
func SyntheticUKI(names []string, contents map[string][]byte) []byte {
	const fileAlign, secAlign = 0x200, 0x1000
	align := func(n, a int) int { return (n + a - 1) / a * a }
	headers := align(0x40+4+20+240+40*len(names), fileAlign)
	var out bytes.Buffer
	dos := make([]byte, 0x40)
	copy(dos, "MZ")
	binary.LittleEndian.PutUint32(dos[0x3c:], 0x40)
	out.Write(dos)
	out.WriteString("PE\x00\x00")
	binary.Write(&out, binary.LittleEndian, pe.FileHeader{Machine: pe.IMAGE_FILE_MACHINE_AMD64, NumberOfSections: uint16(len(names)), SizeOfOptionalHeader: 240, Characteristics: 0x22})
	var secs []pe.SectionHeader32
	raw, va := headers, secAlign
	for _, n := range names {
		c := contents[n]
		var name [8]uint8
		copy(name[:], n)
		secs = append(secs, pe.SectionHeader32{Name: name, VirtualSize: uint32(len(c)), VirtualAddress: uint32(va), SizeOfRawData: uint32(align(len(c), fileAlign)), PointerToRawData: uint32(raw), Characteristics: 0x40000040})
		raw += align(len(c), fileAlign)
		va += align(len(c), secAlign)
	}
	binary.Write(&out, binary.LittleEndian, pe.OptionalHeader64{Magic: 0x20b, ImageBase: 0x10000000, SectionAlignment: secAlign, FileAlignment: fileAlign, SizeOfImage: uint32(va), SizeOfHeaders: uint32(headers), Subsystem: pe.IMAGE_SUBSYSTEM_EFI_APPLICATION, NumberOfRvaAndSizes: 16})
	binary.Write(&out, binary.LittleEndian, secs)
	out.Write(make([]byte, headers-out.Len()))
	for _, n := range names {
		c := contents[n]
		out.Write(c)
		out.Write(make([]byte, align(len(c), fileAlign)-len(c)))
	}
	return out.Bytes()
}
