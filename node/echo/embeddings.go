package echo

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
)

// Bounds of an embeddings request.
const (
	// DefaultDimensions is the length of an embedding when the request asks none.
	DefaultDimensions = 8
	// MaxDimensions is the longest embedding a request may ask for.
	MaxDimensions = 4096
	// MaxEmbeddingInputs is the most inputs one embeddings request may carry.
	MaxEmbeddingInputs = 2048
)

// embeddingRequest is the part of an embeddings request the engine reads.
type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
}

type embeddingList struct {
	Object string          `json:"object"`
	Data   []embeddingItem `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingUsage  `json:"usage"`
}

// embeddingItem's Embedding is a []float32, or a string of base64 (the
// float32s little-endian) when the request asks encoding_format "base64".
type embeddingItem struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// decodeInputs is an embeddings input: a string or an array of strings, none empty.
func decodeInputs(raw json.RawMessage) ([]string, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badRequest("input", "missing_input", "input is missing; send a string or an array of strings")
	}
	var inputs []string
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		inputs = []string{s}
	} else if err := json.Unmarshal(raw, &inputs); err != nil {
		return nil, badRequest("input", "invalid_type",
			"input must be a string or an array of strings (the echo engine takes no token arrays)")
	}
	switch {
	case len(inputs) == 0:
		return nil, badRequest("input", "missing_input", "input is an empty array; send at least one string")
	case len(inputs) > MaxEmbeddingInputs:
		return nil, badRequest("input", "too_many_inputs", "input has %d strings; at most %d are allowed", len(inputs), MaxEmbeddingInputs)
	}
	for i, in := range inputs {
		if in == "" {
			return nil, badRequest(fmt.Sprintf("input[%d]", i), "empty_input", "input[%d] is empty; every input must have text", i)
		}
	}
	return inputs, nil
}

// embed is the deterministic unit vector of text: dims floats drawn from
// SHA-256(counter ‖ text) blocks, four bytes each mapped to [-1, 1), then
// scaled to length 1.
func embed(text string, dims int) []float32 {
	v := make([]float32, dims)
	var block [sha256.Size]byte
	var norm float64
	for i := range v {
		if i%(sha256.Size/4) == 0 {
			h := sha256.New()
			binary.Write(h, binary.BigEndian, uint32(i/(sha256.Size/4)))
			h.Write([]byte(text))
			h.Sum(block[:0])
		}
		u := binary.BigEndian.Uint32(block[4*(i%(sha256.Size/4)):])
		f := float64(u)/(1<<31) - 1
		v[i] = float32(f)
		norm += f * f
	}
	if norm = math.Sqrt(norm); norm > 0 {
		for i := range v {
			v[i] = float32(float64(v[i]) / norm)
		}
	}
	return v
}

// embeddings serves POST /v1/embeddings.
func (e *engine) embeddings(w http.ResponseWriter, r *http.Request, body []byte) {
	var req embeddingRequest
	if aerr := decodeJSON(body, &req); aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	inputs, aerr := decodeInputs(req.Input)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	dims := DefaultDimensions
	if req.Dimensions != nil {
		if dims = *req.Dimensions; dims < 1 || dims > MaxDimensions {
			writeAPIError(w, badRequest("dimensions", "invalid_value", "dimensions is %d; it must be from 1 to %d", dims, MaxDimensions))
			return
		}
	}
	if f := req.EncodingFormat; f != "" && f != "float" && f != "base64" {
		writeAPIError(w, badRequest("encoding_format", "invalid_value", "encoding_format is %q; it must be float or base64", f))
		return
	}
	list := embeddingList{Object: "list", Data: make([]embeddingItem, len(inputs)), Model: e.modelName(req.Model)}
	for i, in := range inputs {
		v := embed(in, dims)
		item := embeddingItem{Object: "embedding", Index: i, Embedding: v}
		if req.EncodingFormat == "base64" {
			b := make([]byte, 0, 4*len(v))
			for _, f := range v {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
			}
			item.Embedding = base64.StdEncoding.EncodeToString(b)
		}
		list.Data[i] = item
		list.Usage.PromptTokens += countTokens(in)
	}
	list.Usage.TotalTokens = list.Usage.PromptTokens
	writeJSON(w, http.StatusOK, list)
}
