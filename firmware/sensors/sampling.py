# Median of several ADC samples: a single spike (a relay switching, radio bursts)
# cannot move it. Sorted in place into a preallocated buffer: no allocation per read.


def median(read, buf):
    """Fill buf with len(buf) results of read(), sorted; return the middle one."""
    for i in range(len(buf)):
        value = read()
        j = i
        while j and buf[j - 1] > value:
            buf[j] = buf[j - 1]
            j -= 1
        buf[j] = value
    return buf[len(buf) >> 1]
