// Package security holds Hushflow's adversarial test suite (see the
// _test.go files): every case of the threat model as a named test against
// the real server. It has no non-test code.
package security
