package testkit

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that records a failure instead of stopping the
// test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

func TestWaitFor(t *testing.T) {
	start := time.Now()
	n := 0
	WaitFor(t, time.Second, "the third check", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("WaitFor returned after %d checks", n)
	}

	r := &recorder{TB: t}
	func() {
		defer func() { recover() }()
		WaitFor(r, 30*time.Millisecond, "nothing", func() bool { return false })
	}()
	if !strings.Contains(r.failed, "timed out after 30ms waiting for nothing") {
		t.Errorf("WaitFor on a condition that never holds failed with %q", r.failed)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("WaitFor took far longer than its deadline")
	}
}

func TestEventually(t *testing.T) {
	n := 0
	if !Eventually(time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Errorf("Eventually on a condition that holds at the third check: %d checks", n)
	}
	start := time.Now()
	if Eventually(30*time.Millisecond, func() bool { return false }) {
		t.Error("Eventually reported a condition that never holds as held")
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > 5*time.Second {
		t.Errorf("Eventually gave up after %v, want about 30ms", d)
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if len(b.String()) != 400 {
		t.Errorf("Buffer holds %d bytes, want 400", len(b.String()))
	}
}

// The test CA's certificate verifies for 127.0.0.1 against the CA alone.
func TestWriteTestCA(t *testing.T) {
	caFile, certFile, keyFile := WriteTestCA(t, t.TempDir())
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(caFile)
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("ca.pem holds no certificate")
	}
	cb, _ := os.ReadFile(certFile)
	blk, _ := pem.Decode(cb)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("the certificate does not verify for 127.0.0.1: %v", err)
	}
}
