package cardsuite.isoapplet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * The ISO applet's PIN (reference 01): 4..8 bytes, a persistent try counter and a verified flag that
 * lasts until card reset. Kept in this applet's own arrays rather than in OwnerPIN, whose state lives
 * inside the platform where the simulator can neither journal nor tear it: the tearing tests must see
 * every write.
 *
 * The try counter is decremented, as a single committed write, before the comparison and restored only
 * after a match (ISO 7816-4 7.5.6 leaves the order to the card; this one cannot be cheated): cutting the
 * power while the card compares costs the attacker a try.
 */
final class PinCode {
    /** The reference PIN, PIN_MAX bytes of which the first length[0] count. */
    private final byte[] reference;
    /** [0] length of the reference; written with it inside the caller's transaction. */
    private final byte[] length;
    /** [0] tries left. One byte, so each update is a single atomic write. */
    private final byte[] tries;
    /** [0] verified since the last card reset (RAM, cleared on reset so a client applet may rely on it). */
    private final boolean[] verified;
    private final byte limit;

    /** Allocates everything (install time only). */
    PinCode(byte limit, byte maxLength) {
        this.limit = limit;
        reference = new byte[maxLength];
        length = new byte[1];
        tries = new byte[1];
        verified = JCSystem.makeTransientBooleanArray((short) 1, JCSystem.CLEAR_ON_RESET);
    }

    byte triesLeft() {
        return tries[0];
    }

    /** The reference's length (CHANGE REFERENCE DATA with the current PIN splits the data after it). */
    byte length() {
        return length[0];
    }

    /** Gives back every try (RESET RETRY COUNTER with the PUK alone); one byte, one atomic write. */
    void restoreTries() {
        tries[0] = limit;
        verified[0] = false;
    }

    boolean isVerified() {
        return verified[0];
    }

    /** Forgets the verification (VERIFY with P1 FF). */
    void forget() {
        verified[0] = false;
    }

    /**
     * Replaces the reference, restores all tries and forgets the verification. Call inside a transaction
     * (or at install) so that the reference, its length and the counter change together.
     */
    void update(byte[] src, short off, byte len) {
        Util.arrayCopy(src, off, reference, (short) 0, len);
        length[0] = len;
        tries[0] = limit;
        verified[0] = false;
    }

    /**
     * Compares a candidate with the reference: 6983 when no tries are left; otherwise one try is spent
     * first and given back on a match. Returns whether it matched. Must run outside a transaction, or an
     * abort would give the try back (6985 then).
     */
    boolean check(byte[] src, short off, byte len) {
        if (JCSystem.getTransactionDepth() != 0) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        if (tries[0] == 0) {
            ISOException.throwIt(IsoConstants.SW_PIN_BLOCKED);
        }
        verified[0] = false;
        tries[0]--;
        // Constant time in the reference: every candidate byte is compared whatever the first difference
        // (len is at most the reference's size; a wrong length is a difference too).
        byte diff = (byte) (len ^ length[0]);
        for (short i = 0; i < len; i++) {
            diff |= (byte) (reference[i] ^ src[(short) (off + i)]);
        }
        if (diff != 0) {
            return false;
        }
        tries[0] = limit;
        verified[0] = true;
        return true;
    }

    /** After a failed check: 63Cx with x the tries left, 63C0 on the try that blocks; never returns. */
    void throwFailed() {
        ISOException.throwIt((short) (IsoConstants.SW_TRIES_LEFT_BASE | tries[0]));
    }

    /** For a status query: 6983 when blocked, else 63Cx; never returns. */
    void throwStatus() {
        ISOException.throwIt(tries[0] == 0 ? IsoConstants.SW_PIN_BLOCKED
                : (short) (IsoConstants.SW_TRIES_LEFT_BASE | tries[0]));
    }
}
