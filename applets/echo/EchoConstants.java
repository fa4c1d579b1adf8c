package cardsuite.echo;

/** APDU interface of the loopback applet. */
public interface EchoConstants {
    byte CLA_ECHO = (byte) 0x80;
    byte INS_ECHO = (byte) 0x01;
    byte INS_FILL = (byte) 0x02;
    byte INS_EXACT = (byte) 0x03;
    byte INS_SEGMENTED = (byte) 0x04;
    byte INS_GET_RESPONSE = (byte) 0xC0;

    /** CLA b7: the further interindustry class, logical channels 4-19 (ISO 7816-4 5.4.1). */
    byte FURTHER_CLASS = (byte) 0x40;
    /** What stays of a first-class CLA (channels 0-3) without its channel number b2 b1. */
    byte FIRST_CLASS_BITS = (byte) 0xFC;
    /** What stays of a further-class CLA (channels 4-19) without b7 and its channel number b4..b1. */
    byte FURTHER_CLASS_BITS = (byte) 0xB0;

    /** INS_EXACT answers only when Le is exactly this. */
    short EXACT_LENGTH = (short) 32;
    /** INS_SEGMENTED hands out at most this many bytes per response. */
    short SEGMENT = (short) 16;
}
