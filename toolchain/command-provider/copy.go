package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// copySource is the decoded `source` input of CopyToRemote: a text, a local file or a local
// directory (FileAsset, StringAsset or FileArchive, as pulumi-command accepts).
type copySource struct {
	text  *string
	path  string
	isDir bool
}

func decodeCopySource(props resource.PropertyMap) (*copySource, []fieldError) {
	v, ok := props["source"]
	for ok && v.IsSecret() {
		v = v.SecretValue().Element
	}
	switch {
	case !ok || v.IsNull():
		return nil, []fieldError{{"source", "missing required property \"source\""}}
	case v.IsComputed():
		return nil, nil
	case v.IsAsset():
		a := v.AssetValue()
		switch {
		case a.IsText():
			t := a.Text
			return &copySource{text: &t}, nil
		case a.IsPath():
			return &copySource{path: a.Path}, nil
		}
		return nil, []fieldError{{"source", "source must be a FileAsset, a StringAsset or a FileArchive"}}
	case v.IsArchive():
		a := v.ArchiveValue()
		if a.IsPath() {
			info, err := os.Stat(a.Path)
			if err != nil {
				return nil, []fieldError{{"source", err.Error()}}
			}
			return &copySource{path: a.Path, isDir: info.IsDir()}, nil
		}
		return nil, []fieldError{{"source", "source archive must be a FileArchive (a path)"}}
	}
	return nil, []fieldError{{"source", "source must be an asset or an archive, not " + v.TypeString()}}
}

// copyToRemote copies src to remotePath over SSH, with pulumi-command's rules: parent
// directories are created; a file into an existing directory lands in it under its base name,
// an existing file is overwritten; a directory `d` lands at remotePath/d (its contents directly
// in remotePath when the source path ends with "/").
// It needs a POSIX shell, and for directories `tar`, on the remote host (upstream uses SFTP).
func copyToRemote(ctx context.Context, conn *connection, src *copySource, remotePath string) error {
	if conn == nil || src == nil {
		return errors.New("connection and source must be known")
	}
	client, closeClient, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer closeClient()
	q := shellQuote(remotePath)
	switch {
	case src.text != nil:
		script := `set -e; p=` + q + `; if [ -d "$p" ]; then echo "remote path $p is a directory; ` +
			`when using a text asset, remotePath must be a file path" >&2; exit 1; fi; ` +
			`mkdir -p -- "$(dirname -- "$p")"; cat > "$p"`
		return runRemoteScript(client, script, strings.NewReader(*src.text))
	case !src.isDir:
		f, err := os.Open(src.path)
		if err != nil {
			return err
		}
		defer f.Close()
		script := `set -e; p=` + q + `; if [ -d "$p" ]; then p="$p"/` + shellQuote(filepath.Base(src.path)) +
			`; else mkdir -p -- "$(dirname -- "$p")"; fi; cat > "$p"`
		if err := runRemoteScript(client, script, f); err != nil {
			return fmt.Errorf("copying %s to %s:%s: %w", src.path, conn.Host, remotePath, err)
		}
		return nil
	}
	into := ""
	if !strings.HasSuffix(src.path, "/") {
		into = shellQuote(filepath.Base(filepath.Clean(src.path)))
	}
	script := `set -e; p=` + q + `; if [ -e "$p" ] && [ ! -d "$p" ]; then echo "remote path $p exists but is ` +
		`not a directory" >&2; exit 1; fi; `
	if into != "" {
		script += `p="$p"/` + into + `; `
	}
	script += `mkdir -p -- "$p"; tar -x -f - -C "$p"`
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, src.path)) }()
	if err := runRemoteScript(client, script, pr); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("copying %s to %s:%s: %w", src.path, conn.Host, remotePath, err)
	}
	return nil
}

// writeTar writes the regular files and directories under dir as a tar stream.
func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = path.Clean(filepath.ToSlash(rel))
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = "", "", 0, 0
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
