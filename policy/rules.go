package policy

import (
	"fmt"
	"regexp"

	"github.com/google/cel-go/cel"
)

// MaxRules bounds the number of rules in a policy.
const MaxRules = 128

var ruleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

type compiledRule struct {
	Rule
	prg cel.Program
}

// celEnv declares the one variable rules see: claims, a map from device name
// ("cpu0", "tpm0", "gpu0", …) to that device's claims.
func celEnv() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)))
}

func (p *Policy) compileRules() error {
	if len(p.Rules) > MaxRules {
		return fmt.Errorf("%d rules; the limit is %d", len(p.Rules), MaxRules)
	}
	if len(p.Rules) == 0 {
		return nil
	}
	env, err := celEnv()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	p.rules = nil
	for i, r := range p.Rules {
		if !ruleNameRE.MatchString(r.Name) {
			return fmt.Errorf("rules[%d]: name %q must be lower-case letters, digits, '.', '_' or '-'", i, r.Name)
		}
		if seen[r.Name] {
			return fmt.Errorf("rules[%d]: name %q is used twice", i, r.Name)
		}
		seen[r.Name] = true
		if r.Message == "" {
			return fmt.Errorf("rules[%d] (%s): a rule needs a message that says what is wrong when it fails", i, r.Name)
		}
		ast, iss := env.Compile(r.Expr)
		if iss.Err() != nil {
			return fmt.Errorf("rules[%d] (%s): %v", i, r.Name, iss.Err())
		}
		if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
			return fmt.Errorf("rules[%d] (%s): the expression gives %v; it must give a bool", i, r.Name, ast.OutputType())
		}
		prg, err := env.Program(ast, cel.CostLimit(100000), cel.InterruptCheckFrequency(100))
		if err != nil {
			return fmt.Errorf("rules[%d] (%s): %v", i, r.Name, err)
		}
		p.rules = append(p.rules, &compiledRule{Rule: r, prg: prg})
	}
	return nil
}

// rulesCompiled reports whether the compiled rules are exactly p.Rules.
func (p *Policy) rulesCompiled() bool {
	if len(p.rules) != len(p.Rules) {
		return false
	}
	for i, r := range p.rules {
		if r.Rule != p.Rules[i] {
			return false
		}
	}
	return true
}

// RuleOutcome is the result of one rule.
type RuleOutcome struct {
	Rule Rule
	// OK is true when the expression evaluated to true.
	OK bool
	// Err is set when the expression could not be evaluated (a missing
	// claim, a type error, the cost limit); such a rule does not pass.
	Err error
}

// EvalRules evaluates every rule over the claims of all devices. Rules
// that were changed or added since the policy was parsed are compiled
// first; a rule that does not compile fails with its error.
func (p *Policy) EvalRules(claims map[string]map[string]any) []RuleOutcome {
	if !p.rulesCompiled() {
		if err := p.compileRules(); err != nil {
			out := make([]RuleOutcome, len(p.Rules))
			for i, r := range p.Rules {
				out[i] = RuleOutcome{Rule: r, Err: err}
			}
			return out
		}
	}
	vars := map[string]any{"claims": toCEL(claims)}
	out := make([]RuleOutcome, 0, len(p.rules))
	for _, r := range p.rules {
		o := RuleOutcome{Rule: r.Rule}
		v, _, err := r.prg.Eval(vars)
		switch {
		case err != nil:
			o.Err = err
		default:
			b, ok := v.Value().(bool)
			if !ok {
				o.Err = fmt.Errorf("the expression gave %v, not a bool", v.Type())
			}
			o.OK = ok && b
		}
		out = append(out, o)
	}
	return out
}

// toCEL converts claims into values CEL handles natively: integers to int64,
// maps to map[string]any.
func toCEL(claims map[string]map[string]any) map[string]any {
	m := make(map[string]any, len(claims))
	for dev, c := range claims {
		m[dev] = convert(c)
	}
	return m
}

func convert(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = convert(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = convert(e)
		}
		return s
	case []string:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = e
		}
		return s
	case int:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return x
	case int32:
		return int64(x)
	default:
		return v
	}
}
