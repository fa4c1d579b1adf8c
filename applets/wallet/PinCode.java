package cardsuite.wallet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * A PIN or PUK with a persistent try counter ([P002]), kept in this applet's own arrays rather than
 * in OwnerPIN: OwnerPIN keeps its state inside the platform, where our simulator can neither journal
 * nor tear it, and we want the tearing tests to see every write.
 *
 * The try counter is decremented, as a single committed write, before the comparison, and restored
 * only after a match: cutting the power while the card compares costs the attacker a try.
 * Whether the PIN is verified in this session is not kept here but by the applet, in RAM.
 */
final class PinCode implements WalletConstants {
    /** The reference block (PIN_BLOCK bytes): digits then FF. */
    private final byte[] reference;
    /** [0] tries left. One byte, so each update is a single atomic write. */
    private final byte[] tries;
    private final byte limit;

    /** Allocates the reference and the counter (install time only). */
    PinCode(byte limit) {
        this.limit = limit;
        reference = new byte[PIN_BLOCK];
        tries = new byte[1];
    }

    byte triesLeft() {
        return tries[0];
    }

    /** Replaces the reference and restores all tries. Call inside the caller's transaction. */
    void update(byte[] src, short off) {
        Util.arrayCopy(src, off, reference, (short) 0, PIN_BLOCK);
        tries[0] = limit;
    }

    /** Restores all tries (RESET RETRY COUNTER without a new PIN). */
    void resetTries() {
        if (tries[0] != limit) {
            tries[0] = limit;
        }
    }

    /**
     * Compares a candidate block with the reference: 6983 when no tries are left; otherwise one try is
     * spent first and given back on a match. Returns whether it matched. Must run outside a
     * transaction, or an abort would give the try back.
     */
    boolean check(byte[] src, short off) {
        if (JCSystem.getTransactionDepth() != 0) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        if (tries[0] == 0) {
            ISOException.throwIt(SW_AUTH_BLOCKED);
        }
        tries[0]--;
        // Constant time: every byte is compared whatever the first difference.
        byte diff = 0;
        for (short i = 0; i < PIN_BLOCK; i++) {
            diff |= (byte) (reference[i] ^ src[(short) (off + i)]);
        }
        if (diff != 0) {
            return false;
        }
        tries[0] = limit;
        return true;
    }

    /** After a failed check: 63Cx with x the tries left (63C0 for the try that blocks); never returns. */
    void throwFailed() {
        ISOException.throwIt((short) (SW_TRIES_LEFT_BASE | tries[0]));
    }

    /** For a status query: 6983 when blocked, else 63Cx; never returns. */
    void throwStatus() {
        ISOException.throwIt(tries[0] == 0 ? SW_AUTH_BLOCKED : (short) (SW_TRIES_LEFT_BASE | tries[0]));
    }

    /** Whether a block holds minDigits..8 ASCII digits followed only by FF. */
    static boolean isWellFormed(byte[] src, short off, byte minDigits) {
        short digits = 0;
        boolean padding = false;
        for (short i = 0; i < PIN_BLOCK; i++) {
            byte b = src[(short) (off + i)];
            if (b == (byte) 0xFF) {
                padding = true;
            } else if (padding || b < (byte) '0' || b > (byte) '9') {
                return false;
            } else {
                digits++;
            }
        }
        return digits >= minDigits;
    }

}
