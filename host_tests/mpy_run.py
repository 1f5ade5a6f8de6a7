# Runs test functions of one module inside MicroPython (the unix port).
# Usage: micropython mpy_run.py path/to/test_mod.py test_a [test_b ...]
# sys.path (stubs, lib, repo root) comes from MICROPYPATH, set by the pytest plugin.
# Prints "PASS name" or the MicroPython traceback then "FAIL name"; exit status 1 on any failure.
import sys


def main():
    path = sys.argv[1]
    names = sys.argv[2:]
    folder, _, filename = path.rpartition("/")
    sys.path.insert(0, folder or ".")
    try:
        module = __import__(filename[:-3])
    except Exception as exc:
        print("ERROR importing %s under MicroPython:" % path)
        sys.print_exception(exc)
        sys.exit(1)
    failed = 0
    for name in names:
        print("RUN", name)
        try:
            getattr(module, name)()
        except Exception as exc:
            sys.print_exception(exc)
            print("FAIL", name)
            failed += 1
        else:
            print("PASS", name)
    sys.exit(1 if failed else 0)


main()
