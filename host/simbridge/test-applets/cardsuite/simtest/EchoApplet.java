package cardsuite.simtest;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;

/**
 * Bridge test applet: INS 00 echoes the command data; INS 02 returns the install parameters it was given; INS E2
 * (STORE DATA, as its security domain hands it over in a personalisation) answers its header and data, so a test
 * sees what the applet received.
 */
public class EchoApplet extends Applet {
    private static final byte INS_ECHO = 0x00;
    private static final byte INS_INSTALL_PARAMS = 0x02;
    private static final byte INS_STORE_DATA = (byte) 0xE2;
    private static final short HEADER = 4;

    private final byte[] installParams;

    private EchoApplet(byte[] bArray, short bOffset) {
        short aidLength = bArray[bOffset];
        short controlOffset = (short) (bOffset + 1 + aidLength);
        short paramsOffset = (short) (controlOffset + 1 + bArray[controlOffset]);
        installParams = new byte[bArray[paramsOffset]];
        Util.arrayCopy(bArray, (short) (paramsOffset + 1), installParams, (short) 0, (short) installParams.length);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new EchoApplet(bArray, bOffset).register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buffer = apdu.getBuffer();
        switch (buffer[ISO7816.OFFSET_INS]) {
            case INS_ECHO:
                short length = apdu.setIncomingAndReceive();
                apdu.setOutgoingAndSend(ISO7816.OFFSET_CDATA, length);
                break;
            case INS_INSTALL_PARAMS:
                Util.arrayCopyNonAtomic(installParams, (short) 0, buffer, (short) 0, (short) installParams.length);
                apdu.setOutgoingAndSend((short) 0, (short) installParams.length);
                break;
            case INS_STORE_DATA:
                short received = apdu.setIncomingAndReceive();
                Util.arrayCopyNonAtomic(buffer, ISO7816.OFFSET_CDATA, buffer, HEADER, received);
                apdu.setOutgoingAndSend((short) 0, (short) (HEADER + received));
                break;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }
}
