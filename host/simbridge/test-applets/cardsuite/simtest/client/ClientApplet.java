package cardsuite.simtest.client;

import cardsuite.simtest.server.Service;
import javacard.framework.AID;
import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;

/**
 * Bridge test applet for the firewall, the client of ServerApplet (AID F0000000AA0301) in another package.
 *
 * INS 70 the three context flags Service.contexts writes (its comment), then 1 if JCSystem.getAID is this applet
 *        again after the call
 * INS 71 Service.leak(), then reading the array it returned: 1 byte, 1 when that threw SecurityException
 * INS 72 Service.take(an array of this applet's): 1 byte, 1 when SecurityException
 * INS 73 P1 = parameter: getAppletShareableInterfaceObject of the server (P2 00) or of an absent AID (P2 01):
 *        6A82 when it answers null, else 9000
 */
public class ClientApplet extends Applet {
    private static final byte[] SERVER = {(byte) 0xF0, 0x00, 0x00, 0x00, (byte) 0xAA, 0x03, 0x01};
    private static final byte[] ABSENT = {(byte) 0xF0, 0x00, 0x00, 0x00, (byte) 0xAA, 0x03, 0x7F};
    private final byte[] own = new byte[4];
    private AID me;

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        ClientApplet applet = new ClientApplet();
        applet.register(bArray, (short) (bOffset + 1), bArray[bOffset]);
        applet.me = JCSystem.lookupAID(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buffer = apdu.getBuffer();
        switch (buffer[ISO7816.OFFSET_INS]) {
            case 0x70:
                short n = service((byte) 0, SERVER).contexts(buffer, (short) 0);
                buffer[n] = me.equals(JCSystem.getAID()) ? (byte) 1 : 0;
                apdu.setOutgoingAndSend((short) 0, (short) (n + 1));
                return;
            case 0x71:
                byte refused = 0;
                try {
                    byte[] theirs = service((byte) 0, SERVER).leak();
                    buffer[1] = theirs[0];
                } catch (SecurityException e) {
                    refused = 1;
                }
                buffer[0] = refused;
                apdu.setOutgoingAndSend((short) 0, (short) 1);
                return;
            case 0x72:
                byte refusedTake = 0;
                try {
                    service((byte) 0, SERVER).take(own);
                } catch (SecurityException e) {
                    refusedTake = 1;
                }
                buffer[0] = refusedTake;
                apdu.setOutgoingAndSend((short) 0, (short) 1);
                return;
            case 0x73:
                service(buffer[ISO7816.OFFSET_P1], buffer[ISO7816.OFFSET_P2] == 0 ? SERVER : ABSENT);
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    private static Service service(byte parameter, byte[] aid) {
        AID server = JCSystem.lookupAID(aid, (short) 0, (byte) aid.length);
        Service service = server == null ? null
                : (Service) JCSystem.getAppletShareableInterfaceObject(server, parameter);
        if (service == null) {
            ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND);
        }
        return service;
    }
}
