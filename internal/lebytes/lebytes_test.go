package lebytes

import (
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	r := &Reader{B: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	if r.U8("a") != 1 || r.U16("b") != 0x0302 || r.U24("c") != 0x060504 || r.U32("d") != 0x0a090807 || r.Err != nil || r.Off != 10 {
		t.Fatalf("reads: off %d err %v", r.Off, r.Err)
	}
	if r.U16("tail") != 0 || r.Err == nil || !strings.Contains(r.Err.Error(), "truncated at byte 10: tail needs 2 bytes, 0 are left") {
		t.Fatalf("past the end: %v", r.Err)
	}
	if r.Take(0, "x") != nil || r.Off != 10 {
		t.Fatal("a read after an error")
	}
	if (&Reader{}).Take(-1, "") != nil {
		t.Fatal("a negative length")
	}
}
