package store

import (
	"io"
	"slices"
)

// blockBuf is bytes kept in blocks of blockBufLen: an append never copies
// what it holds. A compaction's tail (the records written while its
// snapshot is) grew to 12 MB in BenchmarkGrowingMailbox, and each time its
// single slice was full the writer, which sends wait for, copied it to a
// larger one: 15–30 ms, most of it faulting in the new memory.
type blockBuf struct {
	blocks [][]byte // each full (cap) but the last
	n      int
}

const blockBufLen = 1 << 20

func (b *blockBuf) append(p []byte) {
	b.n += len(p)
	for len(p) > 0 {
		last := len(b.blocks) - 1
		if last < 0 || len(b.blocks[last]) == cap(b.blocks[last]) {
			b.blocks = append(b.blocks, make([]byte, 0, blockBufLen))
			last++
		}
		take := min(len(p), cap(b.blocks[last])-len(b.blocks[last]))
		b.blocks[last] = append(b.blocks[last], p[:take]...)
		p = p[take:]
	}
}

// view is b as it is now, to read while the owner goes on appending: its
// blocks' bytes are never changed, only added to past what view holds.
func (b *blockBuf) view() blockBuf { return blockBuf{blocks: slices.Clone(b.blocks), n: b.n} }

// writeFrom writes b's bytes from offset from on to w.
func (b blockBuf) writeFrom(w io.Writer, from int) (int, error) {
	written := 0
	for _, blk := range b.blocks {
		if from >= len(blk) {
			from -= len(blk)
			continue
		}
		n, err := w.Write(blk[from:])
		written += n
		if err != nil {
			return written, err
		}
		from = 0
	}
	return written, nil
}
