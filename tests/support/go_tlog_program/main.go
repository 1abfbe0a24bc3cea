// Command go_verifier is Transom's outside verifier for tests: it checks the broker's signed checkpoints and
// Merkle proofs with Go's golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, an implementation
// that shares no code with app/tlog (docs/API.md, "Audit ledger").
//
// It reads one JSON request on stdin:
//
//	{"verifier_key": "name+hex+base64", "note": "<signed checkpoint>",
//	 "inclusion": [{"index": I, "leaf_hash": "<b64>", "hashes": ["<b64>", ...]}],
//	 "consistency": [{"size": M, "root_hash": "<b64>", "hashes": ["<b64>", ...]}]}
//
// and prints {"ok": true, "checkpoint": {...}} (exit 0) or {"ok": false, "error": "..."} (exit 1).
// Built in GOPATH mode, offline, against Debian's golang-golang-x-mod-dev.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusionProof struct {
	Index    int64    `json:"index"`
	LeafHash string   `json:"leaf_hash"`
	Hashes   []string `json:"hashes"`
}

type consistencyProof struct {
	Size     int64    `json:"size"`
	RootHash string   `json:"root_hash"`
	Hashes   []string `json:"hashes"`
}

type request struct {
	VerifierKey string             `json:"verifier_key"`
	Note        string             `json:"note"`
	Inclusion   []inclusionProof   `json:"inclusion"`
	Consistency []consistencyProof `json:"consistency"`
}

type checkpoint struct {
	Origin   string `json:"origin"`
	Size     int64  `json:"size"`
	RootHash string `json:"root_hash"`
}

type response struct {
	OK         bool        `json:"ok"`
	Error      string      `json:"error,omitempty"`
	Checkpoint *checkpoint `json:"checkpoint,omitempty"`
}

func main() {
	var req request
	decoder := json.NewDecoder(os.Stdin)
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&req); err != nil {
		reply(response{Error: "bad request: " + err.Error()})
	}
	cp, err := check(req)
	if err != nil {
		reply(response{Error: err.Error(), Checkpoint: cp})
	}
	reply(response{OK: true, Checkpoint: cp})
}

func reply(r response) {
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		os.Exit(2)
	}
	if r.OK {
		os.Exit(0)
	}
	os.Exit(1)
}

func check(req request) (*checkpoint, error) {
	verifier, err := note.NewVerifier(req.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("verifier key: %v", err)
	}
	opened, err := note.Open([]byte(req.Note), note.VerifierList(verifier))
	if err != nil {
		return nil, fmt.Errorf("note: %v", err)
	}
	origin, tree, err := parseCheckpoint(opened.Text)
	if err != nil {
		return nil, err
	}
	cp := &checkpoint{Origin: origin, Size: tree.N, RootHash: tree.Hash.String()}
	if origin != verifier.Name() {
		return cp, fmt.Errorf("checkpoint: origin %q is not the key name %q", origin, verifier.Name())
	}
	for _, p := range req.Inclusion {
		if err := checkInclusion(p, tree); err != nil {
			return cp, fmt.Errorf("inclusion of leaf %d in tree %d: %v", p.Index, tree.N, err)
		}
	}
	for _, p := range req.Consistency {
		if err := checkConsistency(p, tree); err != nil {
			return cp, fmt.Errorf("consistency of tree %d with tree %d: %v", p.Size, tree.N, err)
		}
	}
	return cp, nil
}

// parseCheckpoint reads a C2SP tlog-checkpoint body (tlog.ParseTree insists on the go.sum origin line).
func parseCheckpoint(text string) (string, tlog.Tree, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return "", tlog.Tree{}, errors.New("checkpoint: fewer than three lines")
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	sizeText := strings.TrimSuffix(lines[1], "\n")
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeText {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint: bad size %q", sizeText)
	}
	root, err := tlog.ParseHash(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || origin == "" {
		return "", tlog.Tree{}, errors.New("checkpoint: bad origin or root hash")
	}
	return origin, tlog.Tree{N: size, Hash: root}, nil
}

func checkInclusion(p inclusionProof, tree tlog.Tree) error {
	leaf, err := tlog.ParseHash(p.LeafHash)
	if err != nil {
		return fmt.Errorf("leaf hash: %v", err)
	}
	proof, err := parseHashes(p.Hashes)
	if err != nil {
		return err
	}
	return tlog.CheckRecord(tlog.RecordProof(proof), tree.N, tree.Hash, p.Index, leaf)
}

func checkConsistency(p consistencyProof, tree tlog.Tree) error {
	old, err := tlog.ParseHash(p.RootHash)
	if err != nil {
		return fmt.Errorf("root hash: %v", err)
	}
	proof, err := parseHashes(p.Hashes)
	if err != nil {
		return err
	}
	return tlog.CheckTree(tlog.TreeProof(proof), tree.N, tree.Hash, p.Size, old)
}

func parseHashes(encoded []string) ([]tlog.Hash, error) {
	hashes := make([]tlog.Hash, len(encoded))
	for i, text := range encoded {
		raw, err := base64.StdEncoding.DecodeString(text)
		if err != nil || len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d is not base64 of %d bytes", i, tlog.HashSize)
		}
		copy(hashes[i][:], raw)
	}
	return hashes, nil
}
