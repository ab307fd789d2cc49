# A policy whose admission entry point fails whenever it is evaluated
# (to_number of a word is undefined, so admission is undefined): the
# engine's tests use it to see when a join-time question evaluates the
# policy and when it is answered without.
package geoscope

decision := {"actions": [], "refused": []}

admission := {"actions": [], "refused": [], "n": to_number("evaluated")}
