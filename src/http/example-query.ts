/** The query GraphiQL opens with: the README's dashboard, small. */
export const EXAMPLE_QUERY = `# Send your HyperStudy API key in the X-API-Key header (Headers tab below).
# With \`npm run demo\`, the Headers tab already holds a demo key; the others are in the README.
query Dashboard {
  experiment(id: "exp_movie01") {
    name
    rooms(first: 5) {
      totalCount
      edges {
        node {
          roomId
          status
          participants {
            edges {
              node {
                participantId
                completionCode
                events(first: 3, category: COMPONENT) { totalCount edges { node { eventType onset } } }
                sparseRatings(first: 2) { edges { node { value scale } } }
              }
            }
          }
        }
      }
    }
  }
}
`;
