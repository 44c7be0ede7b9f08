//go:build race

package gctune

// raceBuild: under the race detector every allocation carries shadow
// memory, so the garbage a floor lets pile up costs several times its
// size (200 idle sockets raised a race build's RSS by 33 MiB with a floor,
// 22 without). A race build is a test build: it keeps the runtime's
// default.
const raceBuild = true
