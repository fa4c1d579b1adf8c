package cardsuite.simtest.ext;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacardx.apdu.ExtendedLength;

/**
 * Bridge test applet for extended-length APDUs (javacardx.apdu.ExtendedLength): the runtime hands it commands of
 * up to 32,767 data bytes in one APDU buffer.
 *
 * INS 10 ECHO: receives all command data (receiveBytes until none is left) and returns it
 * INS 11 LENGTHS: Nc (getIncomingLength) and Ne (setOutgoing), two bytes each
 */
public class ExtendedApplet extends Applet implements ExtendedLength {
    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new ExtendedApplet().register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buffer = apdu.getBuffer();
        switch (buffer[ISO7816.OFFSET_INS]) {
            case 0x10:
                echo(apdu);
                return;
            case 0x11:
                short nc = apdu.setIncomingAndReceive() == 0 ? 0 : apdu.getIncomingLength();
                short ne = apdu.setOutgoing();
                buffer[0] = (byte) (nc >> 8);
                buffer[1] = (byte) nc;
                buffer[2] = (byte) (ne >> 8);
                buffer[3] = (byte) ne;
                apdu.setOutgoingLength((short) 4);
                apdu.sendBytes((short) 0, (short) 4);
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    private static void echo(APDU apdu) {
        short received = apdu.setIncomingAndReceive();
        short offset = apdu.getOffsetCdata();
        short total = apdu.getIncomingLength();
        while (received < total) {
            received += apdu.receiveBytes((short) (offset + received));
        }
        apdu.setOutgoingAndSend(offset, total);
    }
}
