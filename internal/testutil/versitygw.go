package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// S3Bucket is the bucket StartS3 creates.
const S3Bucket = "kappa"

// versitygwEnv names an explicit versitygw binary to use.
const versitygwEnv = "KAPPA_VERSITYGW"

var (
	versitygwOnce sync.Once
	versitygwPath string
	versitygwErr  error
)

// versitygwBinary finds versitygw: $KAPPA_VERSITYGW, <repo>/.cache/bin, $PATH,
// else installs the pinned version with scripts/versitygw.sh (once per
// process; it takes about a minute on an idle machine).
func versitygwBinary() (string, error) {
	versitygwOnce.Do(func() {
		if p := os.Getenv(versitygwEnv); p != "" {
			if _, err := os.Stat(p); err != nil {
				versitygwErr = fmt.Errorf("%s=%s: %w", versitygwEnv, p, err)
				return
			}
			versitygwPath = p
			return
		}
		cached := filepath.Join(RepoRoot(), ".cache", "bin", "versitygw")
		if fi, err := os.Stat(cached); err == nil && !fi.IsDir() {
			versitygwPath = cached
			return
		}
		if p, err := exec.LookPath("versitygw"); err == nil {
			versitygwPath = p
			return
		}
		script := filepath.Join(RepoRoot(), "scripts", "versitygw.sh")
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", script)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			versitygwErr = fmt.Errorf("install versitygw with %s: %w: %s", script, err, lastLines(stderr.String(), 5))
			return
		}
		versitygwPath = strings.TrimSpace(string(out))
	})
	return versitygwPath, versitygwErr
}

// StartS3 starts a versitygw S3 gateway on 127.0.0.1 (a free port) over a
// fresh posix directory holding one bucket, S3Bucket, points the AWS SDK at
// it through t.Setenv (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION;
// shared config files disabled), stops it when the test ends, and returns a
// store URL for the bucket:
//
//	s3://kappa?endpoint=http%3A%2F%2F127.0.0.1%3A<port>&region=us-east-1&use_path_style=true&disable_https=true
//
// Append a path ("s3://kappa/t1?...") with S3URL to root a store deeper.
// Without the binary (and no way to install it) the test is skipped, or
// fails under KAPPA_REQUIRE_FIXTURES=1. Not for parallel tests (t.Setenv).
func StartS3(t testing.TB) string {
	t.Helper()
	bin, err := versitygwBinary()
	if err != nil {
		msg := "versitygw S3 server unavailable (run scripts/versitygw.sh or set " + versitygwEnv + "): " + err.Error()
		if os.Getenv(RequireFixturesEnv) == "1" {
			t.Fatalf("%s; %s=1 requires it", msg, RequireFixturesEnv)
		}
		t.Skip(msg)
	}

	access, secret := "kappa"+randHex(6), randHex(20)
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, S3Bucket), 0o755); err != nil {
		t.Fatalf("create bucket dir: %v", err)
	}
	awsDir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(awsDir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(awsDir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	var lastErr error
	for range 3 { // a free port can be taken between probe and bind
		addr, err := freeLoopbackAddr()
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		if lastErr = startVersitygw(t, bin, addr, access, secret, root); lastErr == nil {
			return S3URL(addr, "")
		}
	}
	t.Fatalf("start versitygw: %v", lastErr)
	return ""
}

// S3URL is the store URL of path inside S3Bucket on the gateway at addr.
func S3URL(addr, path string) string {
	q := url.Values{}
	q.Set("endpoint", "http://"+addr)
	q.Set("region", "us-east-1")
	q.Set("use_path_style", "true")
	q.Set("disable_https", "true")
	p := strings.Trim(path, "/")
	if p != "" {
		p = "/" + p
	}
	return "s3://" + S3Bucket + p + "?" + q.Encode()
}

// S3Addr returns host:port of the endpoint in a URL returned by StartS3.
func S3Addr(t testing.TB, s3URL string) string {
	t.Helper()
	u, err := url.Parse(s3URL)
	if err != nil {
		t.Fatalf("parse %q: %v", s3URL, err)
	}
	ep, err := url.Parse(u.Query().Get("endpoint"))
	if err != nil {
		t.Fatalf("parse endpoint of %q: %v", s3URL, err)
	}
	return ep.Host
}

func startVersitygw(t testing.TB, bin, addr, access, secret, root string) error {
	logPath := filepath.Join(t.TempDir(), "versitygw.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// The server outlives this call (until the test's cleanup), so it gets
	// its own context: cancelling it kills the process.
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--port", addr, "--access", access, "--secret", secret,
		"--region", "us-east-1", "--quiet", "posix", root)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		cancel()
		return err
	}
	var waitErr error // set before exited is closed
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		cancel() // kills the process; its exit status says nothing then
		<-exited
	}
	dialer := &net.Dialer{Timeout: 200 * time.Millisecond}

	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-exited:
			cancel()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("versitygw exited before serving: %w: %s", waitErr, lastLines(string(log), 10))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return errors.New("versitygw did not listen on " + addr + " within 30s")
		}
	}
	t.Cleanup(stop)
	return nil
}

func freeLoopbackAddr() (string, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
