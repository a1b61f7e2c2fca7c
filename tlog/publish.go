package tlog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Publish appends a signed record to the log at logURL (POST <logURL>/add)
// and returns the proof the log answers with, after checking that it is a
// well-formed proof of exactly that record. hc nil means
// http.DefaultClient. The caller should verify the proof with a Verifier.
func Publish(ctx context.Context, hc *http.Client, logURL string, leaf []byte) (*Proof, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u, err := url.Parse(logURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("log URL %q must be an http:// or https:// URL", logURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.JoinPath("add").String(), bytes.NewReader(leaf))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("append to log %s: %v", logURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxProofSize+1))
	if err != nil {
		return nil, fmt.Errorf("append to log %s: reading the answer: %v", logURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return nil, fmt.Errorf("log %s refused the record: %s: %s", logURL, resp.Status, msg)
	}
	p, err := ParseProof(body)
	if err != nil {
		return nil, fmt.Errorf("log %s answered with a bad proof: %v", logURL, err)
	}
	if !bytes.Equal(p.Record, leaf) {
		return nil, fmt.Errorf("log %s answered with a proof for a different record", logURL)
	}
	return p, nil
}
