module wasmhost.invalid/guests/echo

go 1.21
