// Package patherr strips the path from a file operation's error.
//
// Errors about a file name it the way the user gave it ("--bundle x:
// no such file or directory"); an *fs.PathError would repeat the path,
// as the program resolved it, in the middle of the message.
package patherr

import (
	"errors"
	"io/fs"
)

// Cause is the error a file operation failed with, without its path, or
// err itself when it is not about a path.
func Cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
