package cardsuite.echo;

/** APDU interface of the loopback applet. */
public interface EchoConstants {
    byte CLA_ECHO = (byte) 0x80;
    byte INS_ECHO = (byte) 0x01;
    byte INS_FILL = (byte) 0x02;
    byte INS_EXACT = (byte) 0x03;
    byte INS_SEGMENTED = (byte) 0x04;
    byte INS_GET_RESPONSE = (byte) 0xC0;

    /** INS_EXACT answers only when Le is exactly this. */
    short EXACT_LENGTH = (short) 32;
    /** INS_SEGMENTED hands out at most this many bytes per response. */
    short SEGMENT = (short) 16;
}
