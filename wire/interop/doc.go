// Package interop tests sworn's wire package against an independent OHTTP
// implementation, github.com/openpcc/ohttp, in both directions. It is a
// module of its own so that the main module does not depend on it; CI runs
// it (make interop).
package interop
