package cardsuite.echo;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * Loopback applet: the smallest real applet of the suite. It proves the build → simulator → host loop,
 * gives the transport benchmark a command whose cost is only the transport's, and answers 6Cxx and 61xx
 * the way T=0 cards do, so hosts can be tested against real card code.
 *
 * CLA 80 INS 01 ECHO (case 4): returns the command data unchanged.
 * CLA 80 INS 02 FILL (case 2): returns Le bytes 00 01 02 ...
 * CLA 80 INS 03 EXACT (case 2): 32 bytes 00 01 .. 1F when Le is 32, else 6C20.
 * CLA 80 INS 04 SEGMENTED, P1 = total length (case 1): the first 16 bytes of FILL's pattern and 61xx
 *   while more remain; CLA 00 INS C0 GET RESPONSE hands out the rest, 16 bytes at a time.
 * On a logical channel the CLA carries its number (ISO 7816-4 5.4.1): 80-83 and C0-CF for 80, 00-03 and 40-4F
 * for 00; secure messaging and chaining are not supported.
 */
public final class EchoApplet extends Applet implements EchoConstants {

    /** [0] bytes of the segmented response already sent, [1] its total length; lost on deselect. */
    private final short[] segment;

    private EchoApplet() {
        segment = JCSystem.makeTransientShortArray((short) 2, JCSystem.CLEAR_ON_DESELECT);
        register();
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new EchoApplet();
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buffer = apdu.getBuffer();
        byte ins = buffer[ISO7816.OFFSET_INS];
        byte cla = withoutChannel(buffer[ISO7816.OFFSET_CLA]);
        if (cla == ISO7816.CLA_ISO7816) {
            if (ins == INS_GET_RESPONSE) {
                sendSegment(apdu);
                return;
            }
            if (ins == ISO7816.INS_SELECT) {
                // The runtime forwards a SELECT that matched no applet to the selected one.
                ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND);
            }
        }
        if (cla != CLA_ECHO) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        switch (ins) {
            case INS_ECHO:
                echo(apdu);
                return;
            case INS_FILL:
                fill(apdu, apdu.setOutgoing());
                return;
            case INS_EXACT:
                exact(apdu);
                return;
            case INS_SEGMENTED:
                segment[0] = 0;
                segment[1] = (short) (buffer[ISO7816.OFFSET_P1] & 0xFF);
                sendSegment(apdu);
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    /**
     * The CLA with its logical channel number cleared (ISO 7816-4 5.4.1): b2 b1 in the first class, b4..b1 in the
     * further one (b7 set), whose b7 goes too. A plain command on any channel gives 00 or 80; secure messaging or
     * chaining (b4 b3 or b5, b6 or b5) leave bits that match neither.
     */
    private static byte withoutChannel(byte cla) {
        return (byte) ((cla & FURTHER_CLASS) == 0 ? cla & FIRST_CLASS_BITS : cla & FURTHER_CLASS_BITS);
    }

    private void echo(APDU apdu) {
        short length = apdu.setIncomingAndReceive();
        if (length != apdu.getIncomingLength()) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        // from offset 0: a response may start anywhere in the buffer, but it must end within the outgoing
        // block (jCardSim: 258 bytes), which data at offset 5 exceeds from Nc 254 on
        byte[] buffer = apdu.getBuffer();
        Util.arrayCopyNonAtomic(buffer, apdu.getOffsetCdata(), buffer, (short) 0, length);
        apdu.setOutgoingAndSend((short) 0, length);
    }

    private static void fill(APDU apdu, short length) {
        byte[] buffer = apdu.getBuffer();
        if (length > (short) buffer.length) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        for (short i = 0; i < length; i++) {
            buffer[i] = (byte) i;
        }
        apdu.setOutgoingLength(length);
        apdu.sendBytes((short) 0, length);
    }

    private static void exact(APDU apdu) {
        short le = apdu.setOutgoing();
        if (le != EXACT_LENGTH) {
            ISOException.throwIt((short) (ISO7816.SW_CORRECT_LENGTH_00 | EXACT_LENGTH));
        }
        fill(apdu, le);
    }

    private void sendSegment(APDU apdu) {
        short remaining = (short) (segment[1] - segment[0]);
        if (remaining <= 0) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        short length = remaining < SEGMENT ? remaining : SEGMENT;
        byte[] buffer = apdu.getBuffer();
        for (short i = 0; i < length; i++) {
            buffer[i] = (byte) (segment[0] + i);
        }
        segment[0] += length;
        apdu.setOutgoingAndSend((short) 0, length);
        remaining = (short) (segment[1] - segment[0]);
        if (remaining > 0) {
            ISOException.throwIt((short) (ISO7816.SW_BYTES_REMAINING_00 | remaining));
        }
    }
}
