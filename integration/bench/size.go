package main

import (
	"debug/elf"
	"fmt"
	"os"
)

// sizeSection reports each wrapper's file size and how it is linked: a
// dynamically linked peer also needs libc in the image, a static one does
// not.
func sizeSection(b *bench) (*table, error) {
	var ref int64
	if r := b.reference(); r != nil {
		if st, err := os.Stat(r.path); err == nil {
			ref = st.Size()
		}
	}
	t := &table{
		title:  "Binary size",
		intro:  "`stat` size of each binary; lifecycled as built by `make build` (CGO_ENABLED=0, -trimpath, -s -w).",
		header: []string{"wrapper", "path", "size", "bytes", "linking", "ratio vs tini"},
	}
	for _, w := range b.wrappers {
		st, err := os.Stat(w.path)
		if err != nil {
			return nil, err
		}
		path := w.path
		if w.floor {
			path = "gofloor (built by the bench, same flags)"
		}
		t.rows = append(t.rows, []string{w.name, path, fmtMiB(st.Size()), fmt.Sprint(st.Size()), linking(w.path),
			fmtRatio(ratio(float64(st.Size()), float64(ref)))})
	}
	t.notes = append(t.notes, "No target; for images, a dynamically linked wrapper also needs libc and the loader.")
	return t, nil
}

// linking says "static" or "dynamic (interpreter)", and whether the symbol
// table was stripped.
func linking(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return "not ELF"
	}
	defer f.Close()
	kind := "static"
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			kind = "dynamic"
		}
	}
	if f.Section(".symtab") == nil {
		kind += ", stripped"
	} else {
		kind += ", not stripped"
	}
	return kind
}
