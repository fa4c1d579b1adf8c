package cardsuite.echo;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;

/**
 * Loopback applet: the smallest real applet of the suite. It proves the build → simulator → host loop
 * and gives the transport benchmark a command whose cost is only the transport's.
 *
 * INS 01 ECHO (case 4): returns the command data unchanged.
 * INS 02 FILL (case 2): returns Le bytes 00 01 02 … so a host can ask for any response length.
 */
public final class EchoApplet extends Applet implements EchoConstants {

    private EchoApplet() {
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
        if (buffer[ISO7816.OFFSET_CLA] != CLA_ECHO) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        switch (buffer[ISO7816.OFFSET_INS]) {
            case INS_ECHO:
                echo(apdu);
                return;
            case INS_FILL:
                fill(apdu);
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    private void echo(APDU apdu) {
        short length = apdu.setIncomingAndReceive();
        if (length != apdu.getIncomingLength()) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        apdu.setOutgoingAndSend(apdu.getOffsetCdata(), length);
    }

    private void fill(APDU apdu) {
        byte[] buffer = apdu.getBuffer();
        short length = apdu.setOutgoing();
        if (length > (short) buffer.length) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        for (short i = 0; i < length; i++) {
            buffer[i] = (byte) i;
        }
        apdu.setOutgoingLength(length);
        apdu.sendBytes((short) 0, length);
    }
}
