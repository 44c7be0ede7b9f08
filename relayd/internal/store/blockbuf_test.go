package store

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestBlockBufAsBytes appends records of random sizes, some larger than a
// block, and checks that writeFrom gives back the bytes from any offset,
// and that a view taken earlier still reads what it held then.
func TestBlockBufAsBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var b blockBuf
	var want []byte
	type view struct {
		b    blockBuf
		want []byte
	}
	var views []view
	for step := range 300 {
		n := r.IntN(20_000)
		if step%50 == 0 {
			n = blockBufLen + r.IntN(blockBufLen)
		}
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.IntN(256))
		}
		b.append(p)
		want = append(want, p...)
		if b.n != len(want) {
			t.Fatalf("step %d: n = %d; want %d", step, b.n, len(want))
		}
		if step%30 == 0 {
			views = append(views, view{b.view(), bytes.Clone(want)})
		}
		from := r.IntN(len(want) + 1)
		var got bytes.Buffer
		if n, err := b.writeFrom(&got, from); err != nil || n != len(want)-from || !bytes.Equal(got.Bytes(), want[from:]) {
			t.Fatalf("step %d: writeFrom(%d) wrote %d bytes (%v), equal %v; want %d", step, from, n, err, bytes.Equal(got.Bytes(), want[from:]), len(want)-from)
		}
	}
	for i, v := range views {
		var got bytes.Buffer
		v.b.writeFrom(&got, 0)
		if !bytes.Equal(got.Bytes(), v.want) {
			t.Fatalf("view %d changed with the appends after it", i)
		}
	}
}
