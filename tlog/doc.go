// Package tlog holds sworn's release transparency log formats and their
// offline verification: release, revocation and key-release records
// (canonical JSON, signed by a publisher), the stapled proof file (a C2SP
// tlog-proof that carries its record), the verification of a proof against
// a pinned log key, witness keys and quorum, a client's last-seen checkpoint
// with split-view detection, and the release.* appraisal steps.
//
// The log server, the witness and the monitor live in the subpackages
// server, witness and monitor.
package tlog
