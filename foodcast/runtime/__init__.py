"""The processes behind the pipeline, on the standard library alone: stop signals turned into
clean ends, the owner of a run, temporary directories a killed process leaves, and the fork
server that starts stage commands warm."""
