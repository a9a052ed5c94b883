package main

import (
	"net"
	"net/http"
	"os"
	"testing"
)

// TestMain lets the test binary be the measured server too (measure
// starts os.Args[0] with FLOOR_ROLE=server).
func TestMain(m *testing.M) {
	if os.Getenv("FLOOR_ROLE") == "server" {
		serve(os.Getenv("FLOOR_MODE"), os.Getenv("FLOOR_PEER"), os.Getenv("FLOOR_DB"))
		return
	}
	os.Exit(m.Run())
}

// TestFloor measures the floor as `make bench` reports it, beside
// TestFlowCPU: each mode offered 30 requests/s for 20 s.
//
//	HUSHFLOW_BENCH=1 go test -run TestFloor -v ./bench/floor/
func TestFloor(t *testing.T) {
	if os.Getenv("HUSHFLOW_BENCH") != "1" {
		t.Skip("benchmark: set HUSHFLOW_BENCH=1 to run it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, peerHandler)
	defer ln.Close()
	for _, mode := range modes {
		ms, n := measure(mode, "http://"+ln.Addr().String()+"/items", 30, 20)
		t.Logf("floor: %s %.3f ms of CPU per request (%d requests at 30/s)", mode, ms, n)
	}
}
