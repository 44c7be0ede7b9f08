//go:build !linux && !darwin

package server

// room is 0 where the socket's send queue cannot be asked for (see
// room_unix.go): every frame goes through the connection's writer.
func (c *batchConn) room() int { return 0 }
