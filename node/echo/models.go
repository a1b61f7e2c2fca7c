package echo

import (
	"fmt"
	"net/http"
	"strings"
)

// modelObject is OpenAI's model object.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (e *engine) modelObject() modelObject {
	return modelObject{ID: e.opts.Model, Object: "model", Created: 0, OwnedBy: "sworn"}
}

// models serves GET /v1/models.
func (e *engine) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", []modelObject{e.modelObject()}})
}

// model serves GET /v1/models/{model}.
func (e *engine) model(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/models/")
	if id != e.opts.Model {
		writeError(w, http.StatusNotFound, fmt.Sprintf("the model %q does not exist; this engine serves %q", id, e.opts.Model), "model", "model_not_found")
		return
	}
	writeJSON(w, http.StatusOK, e.modelObject())
}
