"""Pure domain logic of grouping: no I/O, no wall clock; every decision uses event time.

Each stage is a reducer `state, outputs = step(state, message, rules)`; the faust agents in
services/grouping/main.py only decode, look up state, call the reducer and send its outputs.
"""
