// Command image assembles the operator's container image without a Docker daemon, with go-containerregistry, and
// writes it as an OCI image layout in a tar file (an "oci-archive": `podman load -i`, `skopeo copy oci-archive:`,
// `crane push` read it). The image holds what the Dockerfile's distroless stage gives: a base layer with the CA
// certificates, /etc/passwd and /etc/group naming root, nobody and nonroot (65532), /home/nonroot, /tmp and the
// time-zone database when one is given, then a layer with the static binary at /stripe-operator; it runs as
// 65532:65532 with /stripe-operator as its entrypoint. Every timestamp is the epoch, so the same inputs give the same
// digest. hack/image.sh builds the binary and runs this; `make image` runs that.
//
// With -pause it assembles a pod sandbox ("pause") image instead: one layer holding the static binary of ./pause at
// /pause, run as 65535 (hack/node.sh imports it into the node's containerd, which cannot pull one).
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	nonroot    = 65532
	binaryPath = "stripe-operator" // in the image's root, as the Dockerfile puts it
	pausePath  = "pause"
	pauseUser  = 65535 // the user the sandbox images of Kubernetes run as
	caPath     = "etc/ssl/certs/ca-certificates.crt"
)

var epoch = time.Unix(0, 0).UTC()

func main() {
	binary := flag.String("binary", "", "the static stripe-operator binary (CGO_ENABLED=0)")
	ca := flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "the CA certificate bundle")
	zoneinfo := flag.String("zoneinfo", "/usr/share/zoneinfo", "the time-zone database to include; empty for none")
	out := flag.String("o", "", "the OCI archive to write")
	ref := flag.String("ref", "stripe-operator:dev", "the image reference recorded in the archive")
	arch := flag.String("arch", runtime.GOARCH, "the architecture the binary was built for")
	pause := flag.Bool("pause", false, "build a pod sandbox image of the binary (built from ./pause) instead")
	flag.Parse()
	if *binary == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: image -binary bin/stripe-operator -o dist/stripe-operator.oci.tar")
		os.Exit(2)
	}
	var err error
	if *pause {
		err = buildPause(*binary, *out, *ref, *arch)
	} else {
		err = build(*binary, *ca, *zoneinfo, *out, *ref, *arch)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(binary, ca, zoneinfo, out, ref, arch string) error {
	base, err := baseLayer(ca, zoneinfo)
	if err != nil {
		return err
	}
	app, err := binaryLayer(binary, binaryPath)
	if err != nil {
		return err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, base, app); err != nil {
		return fmt.Errorf("adding the layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = arch, "linux", v1.Time{Time: epoch}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		WorkingDir: "/",
		Entrypoint: []string{"/" + binaryPath},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=/" + caPath},
		Labels: map[string]string{"org.opencontainers.image.source": "https://github.com/stripe-operator/stripe-operator"},
	}
	return configure(img, cf, out, ref)
}

// configure sets the image's config file and writes the archive.
func configure(img v1.Image, cf *v1.ConfigFile, out, ref string) error {
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		return fmt.Errorf("setting the config: %w", err)
	}
	return writeArchive(img, out, ref)
}

// buildPause writes a sandbox image: the binary alone at /pause, its entrypoint, run as 65535.
func buildPause(binary, out, ref, arch string) error {
	layer, err := binaryLayer(binary, pausePath)
	if err != nil {
		return err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = arch, "linux", v1.Time{Time: epoch}
	cf.Config = v1.Config{User: fmt.Sprintf("%d:%d", pauseUser, pauseUser), Entrypoint: []string{"/" + pausePath}}
	return configure(img, cf, out, ref)
}

// entry is one file or directory of a layer.
type entry struct {
	name string
	mode int64
	uid  int
	data []byte // nil for a directory
}

func layerOf(entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: epoch, Format: tar.FormatPAX}
		if e.data == nil {
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// baseLayer is what gcr.io/distroless/static:nonroot provides that a static Go binary uses.
func baseLayer(ca, zoneinfo string) (v1.Layer, error) {
	certs, err := os.ReadFile(ca) //nolint:gosec // G304: a path given on the command line
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificates: %w", err)
	}
	entries := []entry{
		{name: "etc", mode: 0o755}, {name: "etc/ssl", mode: 0o755}, {name: "etc/ssl/certs", mode: 0o755},
		{name: caPath, mode: 0o644, data: certs},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "home", mode: 0o755}, {name: "home/nonroot", mode: 0o700, uid: nonroot},
		{name: "root", mode: 0o700},
		{name: "tmp", mode: 0o1777},
	}
	if zoneinfo != "" {
		zones, err := tree(zoneinfo, "usr/share/zoneinfo")
		if err != nil {
			return nil, fmt.Errorf("reading the time-zone database: %w", err)
		}
		entries = append(entries, entry{name: "usr", mode: 0o755}, entry{name: "usr/share", mode: 0o755})
		entries = append(entries, zones...)
	}
	return layerOf(entries)
}

// tree reads the regular files and directories under dir (following no links) as entries under prefix.
func tree(dir, prefix string) ([]entry, error) {
	var entries []entry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(filepath.Join(prefix, rel))
		switch {
		case d.IsDir():
			entries = append(entries, entry{name: name, mode: 0o755})
		case d.Type().IsRegular():
			b, err := os.ReadFile(path) //nolint:gosec // G304: under a directory given on the command line
			if err != nil {
				return err
			}
			entries = append(entries, entry{name: name, mode: 0o644, data: b})
		}
		return nil
	})
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, err
}

// binaryLayer is a layer holding the static binary as name, in the image's root.
func binaryLayer(binary, name string) (v1.Layer, error) {
	b, err := os.ReadFile(binary) //nolint:gosec // G304: a path given on the command line
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	if len(b) < 4 || !bytes.Equal(b[:4], []byte("\x7fELF")) {
		return nil, errors.New("the binary is not a Linux ELF executable")
	}
	return layerOf([]entry{{name: name, mode: 0o755, data: b}})
}

// writeArchive writes img as an OCI image layout and packs the layout into a tar file.
func writeArchive(img v1.Image, out, ref string) error {
	dir, err := os.MkdirTemp("", "stripe-operator-image-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref})); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil { //nolint:gosec // G301: dist/ is for sharing
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	tw := tar.NewWriter(tmp)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
		if d.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			return tw.WriteHeader(h)
		}
		b, err := os.ReadFile(path) //nolint:gosec // G304: our own temporary layout
		if err != nil {
			return err
		}
		h.Typeflag, h.Size = tar.TypeReg, int64(len(b))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("packing the layout: %w", err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
