// Command floor measures what the input and output of one Hushflow run
// cost on this machine with nothing else around them: the CPU time per
// request of a bare Go server (net/http, database/sql over the same
// embedded SQLite driver and settings as Hushflow's default) offered
// requests at a steady rate, as TestFlowCPU offers webhooks to `hushflow
// serve`. It is the floor under Hushflow's own figure: what a run of the
// webhook -> http -> code flow could cost if Hushflow did nothing but its
// I/O.
//
//	go run ./bench/floor [-rate 30] [-seconds 20]
//
// Each mode runs in a process of its own, one after the other:
//
//	http     answers each POST with 202 after reading its body
//	http+db  also commits one row (a run's insert) before it answers
//	run      also, after answering, sends one GET to a peer (the http
//	         block) and makes three more commits (the audit records of
//	         the secrets load and of the block's read, two rows in one
//	         INSERT; the block's checkpoint; the outcome): the I/O of
//	         one run
//
// The peer and the load are in this process; only the server's CPU is
// counted (utime + stime of /proc/<pid>/stat).
package main

import (
	"bufio"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	if os.Getenv("FLOOR_ROLE") == "server" {
		serve(os.Getenv("FLOOR_MODE"), os.Getenv("FLOOR_PEER"), os.Getenv("FLOOR_DB"))
		return
	}
	rate := flag.Int("rate", 30, "requests offered per second")
	seconds := flag.Int("seconds", 20, "seconds of offered load per mode")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, peerHandler)
	for _, mode := range modes {
		ms, n := measure(mode, "http://"+ln.Addr().String()+"/items", *rate, *seconds)
		fmt.Printf("%-8s %.3f ms of CPU per request (%d requests at %d/s)\n", mode, ms, n, *rate)
	}
}

// modes are the servers measured, in order.
var modes = []string{"http", "http+db", "run"}

// peerHandler is the peer the run mode's GET goes to, answering as
// TestFlowCPU's does.
var peerHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true,"items":[1,2,3]}`)
})

// measure starts a server in mode and offers it rate requests a second
// for seconds; it returns the server's CPU time per request.
func measure(mode, peer string, rate, seconds int) (float64, int) {
	dir, err := os.MkdirTemp("", "floor")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FLOOR_ROLE=server", "FLOOR_MODE="+mode, "FLOOR_PEER="+peer, "FLOOR_DB="+filepath.Join(dir, "floor.db"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		log.Fatalf("%s: no address: %v", mode, err)
	}
	url := "http://" + strings.TrimSpace(addr) + "/hook"
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(i int) {
		resp, err := client.Post(url, "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil {
			log.Fatalf("%s: %v", mode, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			log.Fatalf("%s: status %d", mode, resp.StatusCode)
		}
	}
	for i := 0; i < 50; i++ { // warm up
		post(-1)
	}
	time.Sleep(2 * time.Second)
	c0 := cpu(cmd.Process.Pid)
	n := rate * seconds
	start := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		post(i)
	}
	time.Sleep(time.Second) // the last run's work after its answer
	return (cpu(cmd.Process.Pid) - c0).Seconds() * 1000 / float64(n), n
}

// cpu is the user and system time process pid has used.
func cpu(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		log.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ticks int64
	for _, i := range []int{11, 12} { // utime, stime (after the ")")
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100
}

// serve is the measured server.
func serve(mode, peer, path string) {
	var db *sql.DB
	if mode != "http" {
		var err error
		// As Hushflow opens its embedded database.
		db, err = sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)")
		if err != nil {
			log.Fatal(err)
		}
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
		if _, err := db.Exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL)"); err != nil {
			log.Fatal(err)
		}
	}
	insert := func(kind, body string) {
		if _, err := db.Exec("INSERT INTO rows (kind, body) VALUES (?, ?)", kind, body); err != nil {
			log.Fatal(err)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	http.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if db != nil {
			insert("run", string(body))
		}
		w.WriteHeader(http.StatusAccepted)
		if mode != "run" {
			return
		}
		go func() {
			if _, err := db.Exec("INSERT INTO rows (kind, body) VALUES ('audit', 'load'), ('audit', 'read')"); err != nil {
				log.Fatal(err)
			}
			resp, err := client.Get(peer)
			if err != nil {
				log.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			insert("checkpoint", string(out))
			insert("outcome", string(out))
		}()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	log.Fatal(http.Serve(ln, nil))
}
