package tpm

import "testing"

func TestDBMatches(t *testing.T) {
	entry := "CN=Microsoft Corporation UEFI CA 2011,O=Microsoft Corporation,C=US (sha256:46def63b)"
	for _, tc := range []struct {
		want string
		ok   bool
	}{
		{"sha256:46def63b", true},
		{"CN=Microsoft Corporation UEFI CA 2011,O=Microsoft Corporation,C=US", true},
		{"Microsoft", false},
		{"CA", false},
		{"sha256:46def6", false},
		{"CN=Microsoft Corporation UEFI CA 2011", false},
	} {
		if got := dbMatches(entry, tc.want); got != tc.ok {
			t.Errorf("dbMatches(%q) = %v", tc.want, got)
		}
	}
	if !dbMatches("MicrosoftUEFICA2011", "MicrosoftUEFICA2011") || dbMatches("MicrosoftUEFICA2011", "Microsoft") {
		t.Error("well-known names match exactly")
	}
}
