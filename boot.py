# Runs first after every reset, before main.py. Kept to almost nothing so that a
# broken application can always be reached and fixed from the serial REPL.
import gc

gc.collect()
