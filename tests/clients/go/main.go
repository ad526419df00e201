// Go's net/http (standard library only: it must build offline) against
// h2lab's /bytes/N and /echo, over TLS: net/http speaks HTTP/2 through ALPN;
// Go 1.19's standard library has no h2c (prior knowledge) client — that is
// golang.org/x/net/http2 — so cleartext is not tested with Go.
//
// Usage: go_client URL...   (https:// only; any certificate is taken)
//
// For each URL: GET /bytes/N for each N of $H2LAB_BYTES, POST /echo for each
// size of $H2LAB_ECHO (math/rand octets, fixed seed), every octet checked
// here, and each response must be HTTP/2. Prints "PASS URL what" or
// "FAIL URL what: why" per check; exits 1 on any FAIL.
package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

const pattern = "abcdefghijklmnopqrstuvwxyz0123456789\n"

func sizes(env, fallback string) []int {
	text, ok := os.LookupEnv(env)
	if !ok {
		text = fallback
	}
	var out []int
	for _, f := range strings.Fields(text) {
		n, err := strconv.Atoi(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %q is not a size\n", env, f)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

func expectedBytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = pattern[i%len(pattern)]
	}
	return out
}

// "" when got == want, else what differs first.
func mismatch(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("%d octets (want %d), first difference at octet %d", len(got), len(want), i)
}

func fetch(client *http.Client, method, url string, body []byte, want []byte) string {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return "reading the body: " + err.Error()
	}
	if resp.ProtoMajor != 2 {
		return "spoke " + resp.Proto
	}
	if resp.StatusCode != 200 {
		return "status " + resp.Status
	}
	return mismatch(got, want)
}

func main() {
	byteSizes := sizes("H2LAB_BYTES", "0 1 36 37 16383 16384 16385 40000 65535 65536 100003 1048589")
	echoSizes := sizes("H2LAB_ECHO", "1 16385 1048576")
	rng := rand.New(rand.NewSource(5))
	failed := false
	for _, base := range os.Args[1:] {
		transport := &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // self-signed certificate
			// A custom TLSClientConfig turns HTTP/2 off unless asked for.
			ForceAttemptHTTP2: true,
		}
		client := &http.Client{Transport: transport, Timeout: 60 * time.Second}
		report := func(what, why string) {
			if why == "" {
				fmt.Printf("PASS %s %s\n", base, what)
			} else {
				fmt.Printf("FAIL %s %s: %s\n", base, what, why)
				failed = true
			}
		}
		for _, n := range byteSizes {
			report(fmt.Sprintf("GET /bytes/%d", n),
				fetch(client, "GET", base+"bytes/"+strconv.Itoa(n), nil, expectedBytes(n)))
		}
		for _, n := range echoSizes {
			body := make([]byte, n)
			rng.Read(body)
			report(fmt.Sprintf("POST /echo (%d octets)", n), fetch(client, "POST", base+"echo", body, body))
		}
		// The blocking dispatcher serves one connection at a time: let it go.
		transport.CloseIdleConnections()
	}
	if failed {
		os.Exit(1)
	}
}
