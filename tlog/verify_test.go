package tlog

import (
	"bytes"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

func TestHasherMatchesRFC6962(t *testing.T) {
	for _, leaf := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{7}, 5000)} {
		if !bytes.Equal(hasher.HashLeaf(leaf), rfc6962.DefaultHasher.HashLeaf(leaf)) {
			t.Fatalf("leaf hash of %d bytes differs", len(leaf))
		}
	}
	l, r := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for _, p := range [][2][]byte{{l, r}, {r, l}, {l[:5], r}} {
		if !bytes.Equal(hasher.HashChildren(p[0], p[1]), rfc6962.DefaultHasher.HashChildren(p[0], p[1])) {
			t.Fatal("node hash differs")
		}
	}
	if !bytes.Equal(hasher.EmptyRoot(), rfc6962.DefaultHasher.EmptyRoot()) || hasher.Size() != rfc6962.DefaultHasher.Size() {
		t.Fatal("empty root or size differs")
	}
}
