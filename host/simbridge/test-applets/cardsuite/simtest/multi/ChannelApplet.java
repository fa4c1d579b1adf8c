package cardsuite.simtest.multi;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.MultiSelectable;
import javacard.framework.OwnerPIN;
import javacard.framework.Util;
import javacard.security.AESKey;
import javacard.security.KeyBuilder;

/**
 * Bridge test applet for logical channels and transient memory: a MultiSelectable applet in a package of its own.
 * Install parameters (optional): one byte, the value its select() answers with (00 refuses selection).
 *
 * INS 50 INFO: APDU.getCLAChannel, JCSystem.getAssignedChannel, the last select and deselect calls (see
 *        below), CLEAR_ON_DESELECT byte, CLEAR_ON_RESET byte, deselect key initialised, reset key initialised,
 *        PIN validated (one byte each, 9 bytes)
 * INS 51 SET, P1 = value: both transient bytes to P1, both transient AES keys set, the PIN (31 32 33 34) checked
 *
 * Select calls: 1 Applet.select(), 2 MultiSelectable.select(false), 3 select(true); deselect calls likewise.
 * deselect() and deselect(false) reset the PIN's validated flag (OwnerPIN.reset, what an applet does so that
 * a PIN lasts one session); deselect(true) leaves it: the applet is still selected on another channel.
 */
public class ChannelApplet extends Applet implements MultiSelectable {
    private static final byte INS_INFO = 0x50;
    private static final byte INS_SET = 0x51;
    private static final short INFO_LENGTH = 9;
    private static final byte PLAIN = 1;
    private static final byte MULTI_FALSE = 2;
    private static final byte MULTI_TRUE = 3;
    private static final byte[] PIN = {0x31, 0x32, 0x33, 0x34};
    private static final byte PIN_TRIES = 3;

    private final byte[] deselectRam;
    private final byte[] resetRam;
    private final AESKey deselectKey;
    private final AESKey resetKey;
    private final OwnerPIN pin;
    private final boolean acceptSelection;
    private byte lastSelect;
    private byte lastDeselect;

    private ChannelApplet(boolean accept) {
        acceptSelection = accept;
        deselectRam = JCSystem.makeTransientByteArray((short) 1, JCSystem.CLEAR_ON_DESELECT);
        resetRam = JCSystem.makeTransientByteArray((short) 1, JCSystem.CLEAR_ON_RESET);
        deselectKey = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES_TRANSIENT_DESELECT,
                KeyBuilder.LENGTH_AES_128, false);
        resetKey = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES_TRANSIENT_RESET, KeyBuilder.LENGTH_AES_128,
                false);
        pin = new OwnerPIN(PIN_TRIES, (byte) PIN.length);
        pin.update(PIN, (short) 0, (byte) PIN.length);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        short params = (short) (bOffset + 1 + bArray[bOffset]);
        params = (short) (params + 1 + bArray[params]); // past the control info
        boolean accept = bArray[params] == 0 || bArray[(short) (params + 1)] != 0;
        new ChannelApplet(accept).register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public boolean select() {
        lastSelect = PLAIN;
        return acceptSelection;
    }

    public boolean select(boolean appInstAlreadyActive) {
        lastSelect = appInstAlreadyActive ? MULTI_TRUE : MULTI_FALSE;
        return acceptSelection;
    }

    public void deselect() {
        lastDeselect = PLAIN;
        pin.reset();
    }

    public void deselect(boolean appInstStillActive) {
        lastDeselect = appInstStillActive ? MULTI_TRUE : MULTI_FALSE;
        if (!appInstStillActive) {
            pin.reset();
        }
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buffer = apdu.getBuffer();
        switch (buffer[ISO7816.OFFSET_INS]) {
            case INS_INFO:
                info(apdu, buffer);
                return;
            case INS_SET:
                set(buffer, buffer[ISO7816.OFFSET_P1]);
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    private void info(APDU apdu, byte[] buffer) {
        buffer[0] = APDU.getCLAChannel();
        buffer[1] = JCSystem.getAssignedChannel();
        buffer[2] = lastSelect;
        buffer[3] = lastDeselect;
        buffer[4] = deselectRam[0];
        buffer[5] = resetRam[0];
        buffer[6] = deselectKey.isInitialized() ? (byte) 1 : 0;
        buffer[7] = resetKey.isInitialized() ? (byte) 1 : 0;
        buffer[8] = pin.isValidated() ? (byte) 1 : 0;
        apdu.setOutgoingAndSend((short) 0, INFO_LENGTH);
    }

    private void set(byte[] buffer, byte value) {
        deselectRam[0] = value;
        resetRam[0] = value;
        Util.arrayFillNonAtomic(buffer, (short) 0, (short) 16, value);
        deselectKey.setKey(buffer, (short) 0);
        resetKey.setKey(buffer, (short) 0);
        Util.arrayCopyNonAtomic(PIN, (short) 0, buffer, (short) 0, (short) PIN.length);
        if (!pin.check(buffer, (short) 0, (byte) PIN.length)) {
            ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
    }
}
