// Package container_test builds the container image from ../../Containerfile
// with podman, unpacks the image's filesystem, and runs the binary found
// there the way the image says to (entrypoint, command, user, working
// directory, environment, health check), inside a chroot: `podman run`
// needs a container runtime this test does not assume.
//
// It needs podman and root (for the offline build, --isolation chroot, and
// for chroot(2)). Without them it is skipped, unless
// GEOSCOPE_REQUIRE_PODMAN=1, which makes it fail: CI sets it.
package container_test

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/internal/proctest"
)

// EnvRequire=1 turns a missing podman (or not running as root) into a
// failure.
const EnvRequire = "GEOSCOPE_REQUIRE_PODMAN"

// imageConfig is what the test reads of `podman image inspect`.
type imageConfig struct {
	Size int64 `json:"Size"`
	// Healthcheck is at the top of podman's inspect output (the docker
	// image format keeps it in the config).
	Healthcheck *struct {
		Test []string `json:"Test"`
	} `json:"Healthcheck"`
	Config struct {
		User         string              `json:"User"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		Env          []string            `json:"Env"`
		WorkingDir   string              `json:"WorkingDir"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Volumes      map[string]struct{} `json:"Volumes"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"Config"`
}

const (
	uid       = 65532
	imagePort = "8181"
)

func TestContainerImage(t *testing.T) {
	podman := requirePodman(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tag := "localhost/geoscope-imagetest:" + randomHex(t, 6)

	// The modules the binary needs, into the module cache the offline
	// build mounts (as make image does).
	list := exec.Command("go", "list", "-deps", "./cmd/geoscope")
	list.Dir = root
	if out, err := list.CombinedOutput(); err != nil {
		t.Fatalf("go list -deps ./cmd/geoscope: %v\n%s", err, tail(out, 20))
	}

	// The offline build of the Containerfile's header (make image).
	started := time.Now()
	build := exec.Command(podman, buildArgs(t, tag)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("podman build: %v\n%s", err, tail(out, 60))
	}
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "--force", tag).Run() })
	t.Logf("image built in %s", time.Since(started).Round(time.Second))

	cfg := inspect(t, podman, tag)
	t.Logf("image size: %d bytes (%.1f MB)", cfg.Size, float64(cfg.Size)/1e6)
	c := cfg.Config
	if c.User != fmt.Sprintf("%d:%d", uid, uid) {
		t.Errorf("image user %q, want %d:%d (not root)", c.User, uid, uid)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/geoscope"}) || len(c.Cmd) == 0 || c.Cmd[0] != "serve" {
		t.Errorf("entrypoint %q, command %q: want the binary, serving", c.Entrypoint, c.Cmd)
	}
	if !slices.Contains(c.Cmd, "0.0.0.0:"+imagePort) || !slices.Contains(c.Cmd, "--tokens-file") {
		t.Errorf("command %q: want --addr 0.0.0.0:%s with a tokens file", c.Cmd, imagePort)
	}
	if _, ok := c.ExposedPorts[imagePort+"/tcp"]; !ok {
		t.Errorf("exposed ports %v, want %s/tcp", c.ExposedPorts, imagePort)
	}
	hcTest := []string(nil)
	if cfg.Healthcheck != nil {
		hcTest = cfg.Healthcheck.Test
	}
	if !slices.Equal(hcTest, []string{"CMD", "/usr/local/bin/geoscope", "probe"}) {
		t.Fatalf("health check %q: want an exec-form CMD of geoscope probe (no shell)", hcTest)
	}
	if !slices.Contains(c.Env, "GEOSCOPE_PROBE_URL=http://127.0.0.1:"+imagePort+"/ready") {
		t.Errorf("environment %q: want GEOSCOPE_PROBE_URL naming /ready on port %s", c.Env, imagePort)
	}
	if c.Labels["org.opencontainers.image.version"] != "imagetest" {
		t.Errorf("labels %v: want the version build argument", c.Labels)
	}

	rootfs := unpack(t, podman, tag)
	checkFiles(t, rootfs)
	checkStatic(t, filepath.Join(rootfs, "usr/local/bin/geoscope"))

	// Run the image's own command, with a tokens file where the command
	// expects it and a free loopback port instead of 0.0.0.0:8181 (the
	// later --addr wins).
	decide, admin := randomHex(t, 16), randomHex(t, 16)
	tokens := fmt.Sprintf("decide %s\nadmin %s\n", digest(decide), digest(admin))
	if err := os.MkdirAll(filepath.Join(rootfs, "etc/geoscope"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/geoscope/tokens"), []byte(tokens), 0o644); err != nil {
		t.Fatal(err)
	}
	port := proctest.FreePort(t)
	argv := append(append(slices.Clone(c.Entrypoint), c.Cmd...), "--addr", "127.0.0.1:"+port)
	srv, exited := startInImage(t, rootfs, c.WorkingDir, c.Env, argv)
	base := "http://127.0.0.1:" + port
	waitOK(t, base+"/ready", exited)

	// The image's health check, as the image states it, against our port
	// (named as an operator would: GEOSCOPE_PROBE_URL).
	hc := slices.Clone(hcTest[1:])
	probeEnv := func(url string) []string {
		return append(slices.DeleteFunc(slices.Clone(c.Env), func(v string) bool { return strings.HasPrefix(v, "GEOSCOPE_PROBE_URL=") }), "GEOSCOPE_PROBE_URL="+url)
	}
	probe, probeOut := chrootCmd(rootfs, c.WorkingDir, probeEnv(base+"/ready"), hc...)
	if err := probe.Run(); err != nil {
		t.Errorf("health check %q: %v\n%s", hc, err, probeOut)
	}
	probe, _ = chrootCmd(rootfs, c.WorkingDir, probeEnv("http://127.0.0.1:"+proctest.FreePort(t)+"/ready"), hc...)
	var exitErr *exec.ExitError
	if err := probe.Run(); !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("health check against a closed port: %v, want exit 1", err)
	}

	// The version build argument is the binary's version: what `geoscope
	// version` prints, /v1/status reports and every ledger entry records.
	ver, verOut := chrootCmd(rootfs, c.WorkingDir, c.Env, append(slices.Clone(c.Entrypoint), "version")...)
	if err := ver.Run(); err != nil || !strings.Contains(verOut.String(), "Version: imagetest\n") {
		t.Errorf("geoscope version in the image: %v\n%s\nwant Version: imagetest (the VERSION build argument)", err, verOut)
	}
	statusReq, err := http.NewRequest(http.MethodGet, base+"/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	statusReq.Header.Set("Authorization", "Bearer "+admin)
	if resp, err := http.DefaultClient.Do(statusReq); err != nil {
		t.Errorf("GET /v1/status: %v", err)
	} else {
		var st struct {
			Version string `json:"version"`
		}
		err := json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.Version != "imagetest" {
			t.Errorf("/v1/status version %q (%v), want imagetest", st.Version, err)
		}
	}

	// Embedded defaults decide, authenticated, and record as the
	// unprivileged user into the data directory only.
	body := `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"},
		"participants": [{"id": "p1", "ip": "202.96.128.86"}, {"id": "p2", "ip": "8.8.8.8"}]}}`
	if st, _ := post(t, base+"/v1/decisions", "", body); st != http.StatusUnauthorized {
		t.Errorf("decision without a token: %d, want 401", st)
	}
	st, resp := post(t, base+"/v1/decisions", decide, body)
	if st != http.StatusOK || !strings.Contains(resp, `"remove_participant"`) || !strings.Contains(resp, `"CN-2020-0601"`) {
		t.Fatalf("decision with the embedded policy, registry and GeoIP database: %d %s", st, resp)
	}
	ledgerDB := filepath.Join(rootfs, "data", "ledger.db")
	fi, err := os.Stat(ledgerDB)
	if err != nil {
		t.Fatalf("no SQLite ledger in the data directory: %v", err)
	}
	if s, ok := fi.Sys().(*syscall.Stat_t); !ok || s.Uid != uid {
		t.Errorf("ledger.db owned by %v, want uid %d", fi.Sys(), uid)
	}

	stopServer(t, srv, exited)

	t.Run("OCI bundle source", func(t *testing.T) {
		checkOCISource(t, rootfs, c.WorkingDir, c.Env, append(slices.Clone(c.Entrypoint), c.Cmd...))
	})
}

// checkOCISource runs the image's command with an OPA configuration whose
// bundles come from an OCI registry (none answers: only the start is
// checked). OPA's OCI downloaders keep their layers in new directories
// under the temporary directory, one per bundle: the image's /tmp holds
// them while the server runs and loses them when the server stops.
func checkOCISource(t *testing.T, rootfs, dir string, env, command []string) {
	t.Helper()
	registry := "127.0.0.1:" + proctest.FreePort(t)
	config := fmt.Sprintf(`{"services": {"registry": {"url": "http://%s", "type": "oci"}},
		"bundles": {"policies": {"service": "registry", "resource": "%[1]s/geoscope/policies:1"},
		            "registry": {"service": "registry", "resource": "%[1]s/geoscope/registry:1"}}}`, registry)
	if err := os.WriteFile(filepath.Join(rootfs, "etc/geoscope/opa-oci.json"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	port := proctest.FreePort(t)
	argv := append(slices.Clone(command), "--addr", "127.0.0.1:"+port, "--config", "/etc/geoscope/opa-oci.json")
	srv, exited := startInImage(t, rootfs, dir, env, argv)
	// Not ready (no registry answers), but serving.
	waitOK(t, "http://127.0.0.1:"+port+"/health", exited)
	stores, _ := filepath.Glob(filepath.Join(rootfs, "tmp", "opa-oci-*"))
	if len(stores) != 2 {
		t.Errorf("OCI stores in the image's /tmp: %q, want the one each bundle's downloader made", stores)
	}
	stopServer(t, srv, exited)
	if stores, _ := filepath.Glob(filepath.Join(rootfs, "tmp", "opa-oci-*")); len(stores) != 0 {
		t.Errorf("OCI stores left in the image's /tmp after the server stopped: %q", stores)
	}
}

// requirePodman returns podman's path, or skips (fails with
// GEOSCOPE_REQUIRE_PODMAN=1) where the test cannot run.
func requirePodman(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("podman")
	why := ""
	switch {
	case err != nil:
		why = "podman is not installed (Debian: apt-get install podman)"
	case os.Geteuid() != 0:
		why = "the offline image build (--isolation chroot) and chroot(2) need root"
	}
	if why == "" {
		return p
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s, and %s=1", why, EnvRequire)
	}
	t.Skipf("%s (%s=1 makes this a failure)", why, EnvRequire)
	return ""
}

// buildArgs is the offline build documented in the Containerfile: the
// builder stage FROM scratch with this machine's Go toolchain, module cache
// and build cache mounted.
func buildArgs(t *testing.T, tag string) []string {
	t.Helper()
	env := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	return []string{"build", "--isolation", "chroot", "--format", "docker", "--layers=false",
		"--build-arg", "BUILDER_IMAGE=scratch", "--build-arg", "GOPROXY=off", "--build-arg", "VERSION=imagetest",
		"-v", env("GOROOT") + ":/usr/local/go:ro",
		"-v", env("GOMODCACHE") + ":/go/pkg/mod:ro",
		"-v", env("GOCACHE") + ":/root/.cache/go-build",
		"-f", "Containerfile", "-t", tag, "."}
}

func inspect(t *testing.T, podman, tag string) imageConfig {
	t.Helper()
	out, err := exec.Command(podman, "image", "inspect", tag).Output()
	if err != nil {
		t.Fatalf("podman image inspect: %v", err)
	}
	var cfgs []imageConfig
	if err := json.Unmarshal(out, &cfgs); err != nil || len(cfgs) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	return cfgs[0]
}

// unpack saves the image as a docker-archive and applies its layers in
// order into a new directory, keeping owners and modes.
func unpack(t *testing.T, podman, tag string) string {
	t.Helper()
	dir := t.TempDir()
	archive := filepath.Join(dir, "image.tar")
	if out, err := exec.Command(podman, "save", "--format", "docker-archive", "-o", archive, tag).CombinedOutput(); err != nil {
		t.Fatalf("podman save: %v\n%s", err, out)
	}
	outer := filepath.Join(dir, "archive")
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := extract(tar.NewReader(f), outer); err != nil {
		t.Fatalf("unpacking the archive: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(outer, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(raw, &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v\n%s", err, raw)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, layer := range manifest[0].Layers {
		lf, err := os.Open(filepath.Join(outer, filepath.FromSlash(layer)))
		if err != nil {
			t.Fatal(err)
		}
		err = extract(tar.NewReader(lf), rootfs)
		lf.Close()
		if err != nil {
			t.Fatalf("layer %s: %v", layer, err)
		}
	}
	return rootfs
}

// extract writes a tar stream under dir: directories, regular files,
// symlinks and hard links, with their modes and owners; a ".wh." whiteout
// removes what it names.
func extract(tr *tar.Reader, dir string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)[1:] // never above dir
		if name == "" {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if base := path.Base(name); strings.HasPrefix(base, ".wh.") {
			if err := os.RemoveAll(filepath.Join(filepath.Dir(target), strings.TrimPrefix(base, ".wh."))); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		mode := fs.FileMode(h.Mode).Perm()
		// The sticky bit of /tmp is part of what the image is checked for.
		if h.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode); err != nil {
				return err
			}
			if err := os.Chmod(target, mode); err != nil {
				return err
			}
		case tar.TypeReg:
			_ = os.RemoveAll(target)
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.RemoveAll(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			_ = os.RemoveAll(target)
			if err := os.Link(filepath.Join(dir, filepath.FromSlash(path.Clean("/" + h.Linkname)[1:])), target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected entry type %q", h.Name, h.Typeflag)
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
			return err
		}
	}
}

// checkFiles asserts that the image holds exactly the binary, the user
// database, the attribution, the data directory and /tmp: no shell, no
// other program, nothing but /data belonging to the unprivileged user, and
// nothing but /tmp writable by others than the owner.
func checkFiles(t *testing.T, rootfs string) {
	t.Helper()
	want := []string{"data/README", "etc/group", "etc/passwd", "usr/local/bin/geoscope", "usr/share/doc/geoscope/NOTICE"}
	var files []string
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(rootfs, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		switch {
		case rel == "data" || strings.HasPrefix(rel, "data/"):
			if st.Uid != uid || st.Gid != uid {
				t.Errorf("/%s owned by %d:%d, want %d:%d", rel, st.Uid, st.Gid, uid, uid)
			}
			// serve refuses a SQLite data directory others may write.
			if info.Mode().Perm()&0o002 != 0 {
				t.Errorf("/%s: mode %v: want it writable by its owner (and group) only", rel, info.Mode())
			}
		case rel == "tmp":
			// Every user's, sticky (OPA's OCI downloader writes there).
			if st.Uid != 0 || !d.IsDir() || info.Mode().Perm() != 0o777 || info.Mode()&fs.ModeSticky == 0 {
				t.Errorf("/tmp: owner %d, mode %v: want root's directory with mode 1777 (drwxrwxrwt)", st.Uid, info.Mode())
			}
		case rel != ".":
			if st.Uid != 0 || info.Mode().Perm()&0o022 != 0 {
				t.Errorf("/%s: owner %d, mode %v: want root's, writable by nobody else", rel, st.Uid, info.Mode())
			}
		}
		if !d.IsDir() {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "tmp")); err != nil {
		t.Errorf("the image has no /tmp: %v", err)
	}
	slices.Sort(files)
	if !slices.Equal(files, want) {
		t.Errorf("files in the image:\n  %s\nwant exactly:\n  %s", strings.Join(files, "\n  "), strings.Join(want, "\n  "))
	}
	passwd, err := os.ReadFile(filepath.Join(rootfs, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(passwd), ":"+strconv.Itoa(uid)+":"+strconv.Itoa(uid)+":") {
		t.Errorf("/etc/passwd names no user %d:\n%s", uid, passwd)
	}
}

// checkStatic asserts that the binary needs no loader and no shared
// library.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: it is not static", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s links shared libraries %v (%v)", bin, libs, err)
	}
}

// chrootCmd is argv run inside rootfs as the image's user, in dir, with
// env, as the image would run it.
func chrootCmd(rootfs, dir string, env []string, argv ...string) (*exec.Cmd, *proctest.LockedBuffer) {
	cmd := exec.Command(argv[0], argv[1:]...)
	// exec.Command resolves argv[0] on this machine; the path inside the
	// image is what chroot(2) will run.
	cmd.Path = argv[0]
	cmd.Dir = dir
	cmd.Env = env
	out := &proctest.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     rootfs,
		Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}},
		Setpgid:    true,
	}
	proctest.StopWithParent(cmd.SysProcAttr, syscall.SIGKILL)
	return cmd, out
}

// waitOK waits until url answers 200, failing if the server exits first.
// exited has room for one value: the exit is put back for the cleanup
// that waits for it.
func waitOK(t *testing.T, url string, exited chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the server exited before %s answered 200: %v", url, err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 60s", url)
}

func post(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func digest(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

func tail(out []byte, lines int) string {
	l := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// startInImage starts argv in the image's root (chrootCmd); exited gets
// its end. It is killed when the test ends, and its log printed if the
// test failed.
func startInImage(t *testing.T, rootfs, dir string, env, argv []string) (srv *exec.Cmd, exited chan error) {
	t.Helper()
	srv, logs := chrootCmd(rootfs, dir, env, argv...)
	if err := srv.Start(); err != nil {
		t.Fatalf("starting %q in the image's root: %v", argv, err)
	}
	exited = make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return srv, exited
}

// stopServer sends SIGTERM to srv and waits up to 30 s for it to exit 0;
// exited gets its result back for the cleanup.
func stopServer(t *testing.T, srv *exec.Cmd, exited chan error) {
	t.Helper()
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit within 30s of SIGTERM")
	}
}
