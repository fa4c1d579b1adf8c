package cardsuite.echo;

/** APDU interface of the loopback applet. */
public interface EchoConstants {
    byte CLA_ECHO = (byte) 0x80;
    byte INS_ECHO = (byte) 0x01;
    byte INS_FILL = (byte) 0x02;
}
