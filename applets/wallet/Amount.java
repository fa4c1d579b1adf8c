package cardsuite.wallet;

/**
 * Unsigned 4-byte big-endian arithmetic on byte arrays: balances, limits and the transaction counter.
 * Our target cards have no int (and javacardx.framework.math is optional on cards), so every step
 * works a byte at a time in shorts. None of these methods writes persistent memory unless the caller
 * passes a persistent destination.
 */
final class Amount {
    private static final short SIZE = (short) 4;

    private Amount() {
    }

    /** -1, 0 or 1 as a is below, equal to or above b (both unsigned). */
    static byte compare(byte[] a, short aOff, byte[] b, short bOff) {
        for (short i = 0; i < SIZE; i++) {
            short x = (short) (a[(short) (aOff + i)] & 0xFF);
            short y = (short) (b[(short) (bOff + i)] & 0xFF);
            if (x != y) {
                return x < y ? (byte) -1 : (byte) 1;
            }
        }
        return 0;
    }

    /** out = a + b; returns true on overflow (out then holds the low 32 bits). out may alias a or b. */
    static boolean add(byte[] a, short aOff, byte[] b, short bOff, byte[] out, short outOff) {
        short carry = 0;
        for (short i = (short) (SIZE - 1); i >= 0; i--) {
            short sum = (short) ((short) (a[(short) (aOff + i)] & 0xFF) + (short) (b[(short) (bOff + i)] & 0xFF) + carry);
            out[(short) (outOff + i)] = (byte) sum;
            carry = (short) ((sum >> 8) & 1);
        }
        return carry != 0;
    }

    /** out = a - b; returns true when b > a (out then wraps). out may alias a or b. */
    static boolean subtract(byte[] a, short aOff, byte[] b, short bOff, byte[] out, short outOff) {
        short borrow = 0;
        for (short i = (short) (SIZE - 1); i >= 0; i--) {
            short diff = (short) ((short) (a[(short) (aOff + i)] & 0xFF) - (short) (b[(short) (bOff + i)] & 0xFF) - borrow);
            out[(short) (outOff + i)] = (byte) diff;
            borrow = diff < 0 ? (short) 1 : (short) 0;
        }
        return borrow != 0;
    }

    /** out = a + 1; returns true when a was FFFFFFFF. */
    static boolean increment(byte[] a, short aOff, byte[] out, short outOff) {
        short carry = 1;
        for (short i = (short) (SIZE - 1); i >= 0; i--) {
            short sum = (short) ((short) (a[(short) (aOff + i)] & 0xFF) + carry);
            out[(short) (outOff + i)] = (byte) sum;
            carry = (short) ((sum >> 8) & 1);
        }
        return carry != 0;
    }

    static boolean isZero(byte[] a, short aOff) {
        for (short i = 0; i < SIZE; i++) {
            if (a[(short) (aOff + i)] != 0) {
                return false;
            }
        }
        return true;
    }
}
