package policy

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// preflight reads the policy's syntax tree before it is decoded, and
// refuses what decoding would not catch or could not survive:
//
//   - anchors, aliases and merge keys: an alias is expanded on decoding, so
//     a few hundred bytes of nested aliases ("billion laughs") would grow
//     into gigabytes; a policy has no need for them;
//   - more than one YAML document;
//   - a version that is not written as a plain integer ("1", not '1' or 1.0).
//
// It returns the top-level keys the file sets, which say which evidence
// kinds the policy configures. Parsing builds the tree once, in time and
// memory linear in the input.
func preflight(data []byte) (map[string]bool, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	if len(f.Docs) != 1 {
		return nil, fmt.Errorf("holds %d YAML documents; a policy is one", len(f.Docs))
	}
	var bad error
	ast.Walk(visitFunc(func(n ast.Node) bool {
		if bad != nil {
			return false
		}
		switch n.(type) {
		case *ast.AnchorNode, *ast.AliasNode, *ast.MergeKeyNode:
			bad = fmt.Errorf("line %d: YAML anchors, aliases and merge keys (&, *, <<) are not allowed in a policy; write each value out", n.GetToken().Position.Line)
			return false
		}
		return true
	}), f.Docs[0])
	if bad != nil {
		return nil, bad
	}
	sections := map[string]bool{}
	var values []*ast.MappingValueNode
	switch m := f.Docs[0].Body.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode: // a mapping with a single key
		values = []*ast.MappingValueNode{m}
	default:
		if m == nil {
			return nil, fmt.Errorf("is empty; write one with: sworn policy init")
		}
		return nil, fmt.Errorf("line %d: a policy is a mapping of fields (version: 1, roots: …), not a %s", f.Docs[0].Body.GetToken().Position.Line, f.Docs[0].Body.Type())
	}
	for _, kv := range values {
		key := kv.Key.String()
		sections[key] = true
		if key == "version" {
			if _, ok := kv.Value.(*ast.IntegerNode); !ok {
				return nil, fmt.Errorf("line %d: version must be the integer %d, not %s", kv.Value.GetToken().Position.Line, Version, kv.Value.Type())
			}
		}
	}
	return sections, nil
}

// visitFunc adapts a function to ast.Visitor: it descends while f returns true.
type visitFunc func(ast.Node) bool

func (f visitFunc) Visit(n ast.Node) ast.Visitor {
	if n == nil || !f(n) {
		return nil
	}
	return f
}
